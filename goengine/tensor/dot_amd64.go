//go:build !purego

package tensor

// The amd64 dot product: AVX-512 or AVX2 with FMA when the CPU and OS support
// them (cpu_amd64.go), the generic loop otherwise and for the tail. The pattern
// is the standard library's crypto/internal/fips140/sha256: a generic file, this
// file choosing at run time, and a purego tag that keeps only the generic one.

// Dot returns the dot product of a and b (len(b) >= len(a)).
func Dot(a, b []float32) float32 {
	switch {
	case useAVX512 && len(a) >= 64:
		return dotAVX512Slices(a, b)
	case useAVX2 && len(a) >= 32:
		return dotAVX2Slices(a, b)
	}
	return dotGeneric(a, b)
}

// dotAVX2Slices runs the assembly over the largest multiple of 32 elements and
// the generic loop over the rest.
func dotAVX2Slices(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 31
	if n == 0 {
		return dotGeneric(a, b)
	}
	return dotAVX2(&a[0], &b[0], n) + dotGeneric(a[n:], b[n:])
}

// dotAVX512Slices is dotAVX2Slices for the 64-wide AVX-512 loop.
func dotAVX512Slices(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 63
	if n == 0 {
		return dotAVX2Slices(a, b)
	}
	return dotAVX512(&a[0], &b[0], n) + dotAVX2Slices(a[n:], b[n:])
}

// dotAVX2 is the sum of a[i]*b[i] for i < n; n must be a positive multiple of 32.
//
//go:noescape
func dotAVX2(a, b *float32, n int) float32

// dotAVX512 is the sum of a[i]*b[i] for i < n; n must be a positive multiple of 64.
//
//go:noescape
func dotAVX512(a, b *float32, n int) float32

// dot4AVX512 sets out[r] = Σ_{i<n} x[i]·w[r*stride+i] for r < 4; n must be a
// positive multiple of 32.
//
//go:noescape
func dot4AVX512(x, w *float32, stride, n int, out *[4]float32)

// matVecRowsF32 sets out[r] = w[r] · x for rows [start, end) of a row-major w,
// four rows at a time where AVX-512 can.
func matVecRowsF32(out, w, x []float32, start, end int) {
	cols := len(x)
	r := start
	if useAVX512 && cols%32 == 0 && cols > 0 {
		w = w[:end*cols]
		var four [4]float32
		for ; r+4 <= end; r += 4 {
			dot4AVX512(&x[0], &w[r*cols], cols, cols, &four)
			copy(out[r:r+4], four[:])
		}
	}
	matVecRowsGeneric(out, w, x, r, end)
}
