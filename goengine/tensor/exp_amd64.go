//go:build !purego

package tensor

// The amd64 softmax and SwiGLU gate, chosen at run time as in dot_amd64.go. The
// assembly handles any n >= 1 itself: AVX-512 with masked tails, AVX2 with
// VMASKMOVPS tails.

// Softmax replaces x with exp(x - max(x)) / sum, in place. Entries may be -Inf
// (they become 0) as long as one is finite.
func Softmax(x []float32) {
	switch {
	case len(x) == 0:
	case useAVX512:
		softmaxAVX512(&x[0], len(x))
	case useAVX2:
		softmaxAVX2(&x[0], len(x))
	default:
		softmaxGeneric(x)
	}
}

// SwiGLUGate sets gate[i] = silu(gate[i]) * up[i], silu(z) = z / (1 + exp(-z))
// (len(up) >= len(gate)).
func SwiGLUGate(gate, up []float32) {
	switch {
	case len(gate) == 0:
	case useAVX512:
		swiGLUGateAVX512Slices(gate, up)
	case useAVX2:
		swiGLUGateAVX2Slices(gate, up)
	default:
		swiGLUGateGeneric(gate, up)
	}
}

// The slice forms below are what the tests and benchmarks call directly.

func softmaxAVX512Slice(x []float32) {
	if len(x) > 0 {
		softmaxAVX512(&x[0], len(x))
	}
}

func softmaxAVX2Slice(x []float32) {
	if len(x) > 0 {
		softmaxAVX2(&x[0], len(x))
	}
}

func swiGLUGateAVX512Slices(gate, up []float32) {
	if len(gate) > 0 {
		up = up[:len(gate)]
		swiGLUGateAVX512(&gate[0], &up[0], len(gate))
	}
}

func swiGLUGateAVX2Slices(gate, up []float32) {
	if len(gate) > 0 {
		up = up[:len(gate)]
		swiGLUGateAVX2(&gate[0], &up[0], len(gate))
	}
}

// expAVX512Slices and expAVX2Slices set dst[i] = exp(src[i]) (len(dst) >= len(src)).
func expAVX512Slices(dst, src []float32) {
	if len(src) > 0 {
		dst = dst[:len(src)]
		expAVX512(&dst[0], &src[0], len(src))
	}
}

func expAVX2Slices(dst, src []float32) {
	if len(src) > 0 {
		dst = dst[:len(src)]
		expAVX2(&dst[0], &src[0], len(src))
	}
}

// softmaxAVX512 and softmaxAVX2 are Softmax over x[:n], n >= 1.
//
//go:noescape
func softmaxAVX512(x *float32, n int)

//go:noescape
func softmaxAVX2(x *float32, n int)

// swiGLUGateAVX512 and swiGLUGateAVX2 are SwiGLUGate over gate[:n], up[:n], n >= 1.
//
//go:noescape
func swiGLUGateAVX512(gate, up *float32, n int)

//go:noescape
func swiGLUGateAVX2(gate, up *float32, n int)

// expAVX512 and expAVX2 set dst[i] = exp(src[i]) for i < n, n >= 1; dst may be src.
//
//go:noescape
func expAVX512(dst, src *float32, n int)

//go:noescape
func expAVX2(dst, src *float32, n int)
