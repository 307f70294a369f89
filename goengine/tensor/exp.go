package tensor

import "math"

// A float32 exp, Cephes style, written once in Go (expf) and in the assembly of
// exp_amd64.s with the same constants and the same order of operations:
//
//	x = clamp(x, expLo, expHi)
//	t = x·log2(e) + expMagic   (rounds x·log2(e) to the integer n; t's low bits are n+127)
//	r = x − n·ln2Hi − n·ln2Lo  (Cody-Waite: n·ln2Hi is exact, |r| <= ln2/2)
//	p = 1 + r·(1 + r·(1/2 + r·(c3 + …)))   (Cephes' degree-7 polynomial, all Horner)
//	exp(x) = p · 2^n, 2^n being t's bits shifted into the exponent field
//
// Measured max relative error against math.Exp over [-87.33, 88.37], a 2^22-point
// grid plus 2^22 random points (TestExpMatchesMathExp), the final rounding to
// float32 included: 7.5e-8 for the assembly (fused multiply-adds), 9.9e-8 for
// expf (separate roundings).
//
// Out of range: x < -87.68 (n = -127, exponent field 0) gives exactly 0, so
// exp(-Inf) = 0 as masked softmax entries need; (-87.68, -87.34) gives the
// denormal result; x > expHi saturates at exp(expHi) ≈ 2.4e38, finite, so that
// 1 + exp(-z) never becomes Inf. NaN gives NaN.
const (
	expLo    = -88.0    // round(expLo·log2e) = -127: 2^n's bits are 0
	expHi    = 88.37626 // largest x with n = 127, the largest normal 2^n
	expLog2e = 1.44269504088896341
	expMagic = 1.5*(1<<23) + 127 // adding it rounds to an integer, which its low bits hold, biased
	ln2Hi    = 0.693359375       // 9 significant bits: n·ln2Hi is exact for |n| <= 127
	ln2Lo    = -2.12194440e-4    // ln2 − ln2Hi
	expC7    = 1.9875691500e-4   // Cephes expf: r^7 coefficient …
	expC6    = 1.3981999507e-3
	expC5    = 8.3334519073e-3
	expC4    = 4.1665795894e-2
	expC3    = 1.6666665459e-1
	expC2    = 5.0000001201e-1 // … down to r^2
)

// expf returns e^x for float32 x (see the constants above for range and error).
func expf(x float32) float32 {
	// Comparisons rather than min and max: they let NaN through without the
	// builtins' extra NaN and signed-zero work, which made expf markedly slower.
	if x < expLo {
		x = expLo
	} else if x > expHi {
		x = expHi
	}
	t := x*expLog2e + expMagic
	n := t - expMagic
	r := x - n*ln2Hi
	r -= n * ln2Lo
	p := float32(expC7)
	p = p*r + expC6
	p = p*r + expC5
	p = p*r + expC4
	p = p*r + expC3
	p = p*r + expC2
	p = p*r + 1
	p = p*r + 1
	return p * math.Float32frombits(math.Float32bits(t)<<23)
}

// expGeneric sets dst[i] = expf(src[i]) (len(dst) >= len(src)).
func expGeneric(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = expf(v)
	}
}

// softmaxGeneric is Softmax on expf, with the sum in float64.
func softmaxGeneric(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	var sum float64
	for i, v := range x {
		e := expf(v - m)
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// swiGLUGateGeneric is SwiGLUGate on expf. For z < -88.4, exp(-z) saturates at
// 2.4e38: 1 + exp(-z) stays finite and silu(z) is a tiny number of z's sign.
func swiGLUGateGeneric(gate, up []float32) {
	up = up[:len(gate)]
	for i, z := range gate {
		gate[i] = z / (1 + expf(-z)) * up[i]
	}
}
