//go:build !purego

package tensor

// The amd64 quantized kernels, chosen at run time as in dot_amd64.go.

// DotQ8 returns the dot product of the Q8_0 row w (whole 34-byte blocks) with an
// activation quantized by QuantizeQ8 into xq and xs. The assembly needs
// |xq| <= 127, which QuantizeQ8 guarantees; w may hold -128.
func DotQ8(w []byte, xq []int8, xs []float32) float32 {
	switch {
	case useVNNI:
		return dotQ8VNNISlices(w, xq, xs)
	case useAVX2:
		return dotQ8AVX2Slices(w, xq, xs)
	}
	q8Blocks(w)
	return dotQ8Generic(w, xq, xs)
}

func dotQ8AVX2Slices(w []byte, xq []int8, xs []float32) float32 {
	nb := q8Blocks(w)
	if nb == 0 {
		return 0
	}
	xq, xs = xq[:nb*Q8BlockSize], xs[:nb]
	return dotQ8AVX2(&w[0], &xq[0], &xs[0], nb)
}

func dotQ8VNNISlices(w []byte, xq []int8, xs []float32) float32 {
	nb := q8Blocks(w)
	if nb == 0 {
		return 0
	}
	xq, xs = xq[:nb*Q8BlockSize], xs[:nb]
	return dotQ8VNNI(&w[0], &xq[0], &xs[0], nb)
}

// DotF16 returns the dot product of the float16 row w with x (len(x) >= len(w)).
func DotF16(w []uint16, x []float32) float32 {
	switch {
	case useAVX512 && len(w) >= 16:
		return dotF16AVX512Slices(w, x)
	case useAVX2 && len(w) >= 8:
		return dotF16AVX2Slices(w, x)
	}
	return dotF16Generic(w, x)
}

// dotF16AVX2Slices runs the assembly over the largest multiple of 8 elements and
// the generic loop over the rest.
func dotF16AVX2Slices(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	n := len(w) &^ 7
	if n == 0 {
		return dotF16Generic(w, x)
	}
	return dotF16AVX2(&w[0], &x[0], n) + dotF16Generic(w[n:], x[n:])
}

func dotF16AVX512Slices(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	n := len(w) &^ 15
	if n == 0 {
		return dotF16Generic(w, x)
	}
	return dotF16AVX512(&w[0], &x[0], n) + dotF16Generic(w[n:], x[n:])
}

// DequantizeQ8Row writes the values of the Q8_0 row w into dst.
func DequantizeQ8Row(dst []float32, w []byte) {
	nb := q8Blocks(w)
	if !useAVX2 || nb == 0 {
		dequantizeQ8Generic(dst, w)
		return
	}
	dequantizeQ8AVX2Slices(dst, w)
}

func dequantizeQ8AVX2Slices(dst []float32, w []byte) {
	nb := q8Blocks(w)
	if nb == 0 {
		return
	}
	dst = dst[:nb*Q8BlockSize]
	dequantizeQ8AVX2(&dst[0], &w[0], nb)
}

// DequantizeF16Row writes the values of the float16 row w into dst.
func DequantizeF16Row(dst []float32, w []uint16) {
	if !useAVX2 || len(w) < 8 {
		dequantizeF16Generic(dst, w)
		return
	}
	dequantizeF16AVX2Slices(dst, w)
}

func dequantizeF16AVX2Slices(dst []float32, w []uint16) {
	dst = dst[:len(w)]
	n := len(w) &^ 7
	if n > 0 {
		dequantizeF16AVX2(&dst[0], &w[0], n)
	}
	dequantizeF16Generic(dst[n:], w[n:])
}

// dotQ8AVX2 and dotQ8VNNI are the Q8_0 dot product over nb >= 1 blocks; xq has
// nb*32 values, xs nb scales.
//
//go:noescape
func dotQ8AVX2(w *byte, xq *int8, xs *float32, nb int) float32

//go:noescape
func dotQ8VNNI(w *byte, xq *int8, xs *float32, nb int) float32

// dotF16AVX2 and dotF16AVX512 are the sum of f16(w[i])*x[i] for i < n; n must be
// a positive multiple of 8 and 16 respectively.
//
//go:noescape
func dotF16AVX2(w *uint16, x *float32, n int) float32

//go:noescape
func dotF16AVX512(w *uint16, x *float32, n int) float32

// dequantizeQ8AVX2 widens nb >= 1 blocks into dst (nb*32 values).
//
//go:noescape
func dequantizeQ8AVX2(dst *float32, w *byte, nb int)

// dequantizeF16AVX2 widens n values, n a positive multiple of 8.
//
//go:noescape
func dequantizeF16AVX2(dst *float32, w *uint16, n int)
