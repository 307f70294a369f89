//go:build !purego

package tensor

import (
	"math/rand/v2"
	"testing"
)

// The assembly kernels join the benchmarks when this CPU runs them.
func init() {
	if cpuAVX2 {
		dotQ8Impls = append(dotQ8Impls, namedQ8{"avx2", dotQ8AVX2Slices})
		dotF16Impls = append(dotF16Impls, namedF16{"avx2", dotF16AVX2Slices})
	}
	if cpuVNNI {
		dotQ8Impls = append(dotQ8Impls, namedQ8{"avx512vnni", dotQ8VNNISlices})
	}
	if cpuAVX512 {
		dotF16Impls = append(dotF16Impls, namedF16{"avx512", dotF16AVX512Slices})
	}
}

func TestDotQ8AVX2(t *testing.T) {
	if !cpuAVX2 {
		t.Skip("this CPU has no AVX2+FMA+F16C: only the generic DotQ8 runs here")
	}
	checkDotQ8(t, "avx2", dotQ8AVX2Slices)
	checkDotQ8Saturation(t, "avx2", dotQ8AVX2Slices)
}

func TestDotQ8VNNI(t *testing.T) {
	if !cpuVNNI {
		t.Skip("this CPU has no AVX-512 VNNI: DotQ8 uses AVX2 or the generic loop")
	}
	checkDotQ8(t, "avx512vnni", dotQ8VNNISlices)
	checkDotQ8Saturation(t, "avx512vnni", dotQ8VNNISlices)
}

func TestDotF16AVX2(t *testing.T) {
	if !cpuAVX2 {
		t.Skip("this CPU has no AVX2+FMA+F16C: only the generic DotF16 runs here")
	}
	checkDotF16(t, "avx2", dotF16AVX2Slices)
}

func TestDotF16AVX512(t *testing.T) {
	if !cpuAVX512 {
		t.Skip("this CPU has no AVX-512 F/BW/VL: DotF16 uses AVX2 or the generic loop")
	}
	checkDotF16(t, "avx512", dotF16AVX512Slices)
}

func TestDequantizeAVX2(t *testing.T) {
	if !cpuAVX2 {
		t.Skip("this CPU has no AVX2+F16C: only the generic dequantization runs here")
	}
	checkDequantizeQ8(t, "avx2", dequantizeQ8AVX2Slices)
	checkDequantizeF16(t, "avx2", dequantizeF16AVX2Slices)
}

// BenchmarkDequantize measures widening a 768-value row; MB/s of weight bytes.
func BenchmarkDequantize(b *testing.B) {
	r := rand.New(rand.NewPCG(29, 30))
	const n = 768
	dst, wq := make([]float32, n), randomQ8Row(r, n/Q8BlockSize, 0)
	wh := make([]uint16, n)
	for i := range wh {
		wh[i] = randomF16(r, 10, 18)
	}
	type impl struct {
		name  string
		bytes int
		f     func()
	}
	impls := []impl{
		{"Q8/generic", len(wq), func() { dequantizeQ8Generic(dst, wq) }},
		{"F16/generic", 2 * n, func() { dequantizeF16Generic(dst, wh) }},
	}
	if cpuAVX2 {
		impls = append(impls,
			impl{"Q8/avx2", len(wq), func() { dequantizeQ8AVX2Slices(dst, wq) }},
			impl{"F16/avx2", 2 * n, func() { dequantizeF16AVX2Slices(dst, wh) }})
	}
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			b.SetBytes(int64(im.bytes))
			b.ResetTimer() // set-up is not timed
			for range b.N {
				im.f()
			}
		})
	}
}
