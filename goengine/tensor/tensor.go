// Package tensor holds the numeric kernels of the fast path: dot products and
// matrix products over weights stored as F32, F16, Q8_0 or another of ggml's
// block types (Matrix), RMSNorm,
// softmax and the SwiGLU gate on float32 slices. Package model calls them for
// every product and norm, so speed work stays in this package and never
// touches the model's logic. Beside the kernels it holds what runs them:
//
//   - CPU detection (cpu_amd64.go): CPUID and XGETBV choose, at start-up, the
//     fastest kernel level the CPU and OS support: avx512, avx2 or generic
//     (kernels.go). Every kernel is written once in plain Go as the generic
//     level, the definition the assembly is tested against; the purego build
//     tag, and every architecture but amd64, use only that. SetKernels and
//     UseKernelsFromEnv (GOENGINE_KERNELS) lower the level;
//   - the Pool (pool.go): goroutines started once, on which MatMul, MatVec and
//     attention run, so a decode step starts none and allocates nothing;
//   - the bandwidth probe (bandwidth.go): MemoryBandwidth, the ceiling that
//     goengine bench measures a decode step against.
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
