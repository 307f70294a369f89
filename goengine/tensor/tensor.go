// Package tensor holds the numeric kernels of the engine: dot products,
// matrix products, RMSNorm, softmax and the SwiGLU gate on float32 slices. The model
// package calls only these for its arithmetic, so speed work stays in this package
// and never touches the model's logic.
package tensor

import (
	"math"
)

// dotGeneric is the portable dot product: four independent accumulators let the
// CPU overlap the additions. Every other implementation is tested against it.
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)] // one bounds check here instead of one per element
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// matVecRowsGeneric sets out[r] = w[r] · x for rows [start, end) of a
// row-major w, one Dot per row.
func matVecRowsGeneric(out, w, x []float32, start, end int) {
	cols := len(x)
	for r := start; r < end; r++ {
		out[r] = Dot(x, w[r*cols:(r+1)*cols])
	}
}

// RMSNorm writes x / sqrt(mean(x^2) + eps) * weight into out. The sum of squares
// is accumulated in float64: it is the one long reduction of the op.
func RMSNorm(out, x, weight []float32, eps float64) {
	var sumSquares float64
	for _, v := range x {
		sumSquares += float64(v) * float64(v)
	}
	scale := float32(1 / math.Sqrt(sumSquares/float64(len(x))+eps))
	weight = weight[:len(x)]
	out = out[:len(x)]
	for i, v := range x {
		out[i] = v * scale * weight[i]
	}
}

// Add adds b into a elementwise.
func Add(a, b []float32) {
	b = b[:len(a)]
	for i := range a {
		a[i] += b[i]
	}
}
