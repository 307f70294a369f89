//go:build !purego

package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// dotImplementations are the assembly dot products this CPU can run, by name.
func dotImplementations() map[string]func(a, b []float32) float32 {
	impls := map[string]func(a, b []float32) float32{}
	if cpuAVX2 {
		impls["avx2"] = dotAVX2Slices
	}
	if cpuAVX512 {
		impls["avx512"] = dotAVX512Slices
	}
	return impls
}

// TestDotAssemblyMatchesDefinition runs each assembly dot product on lengths
// around every boundary of its 32- and 64-wide loops, with offsets that misalign
// the slices.
func TestDotAssemblyMatchesDefinition(t *testing.T) {
	impls := dotImplementations()
	if len(impls) == 0 {
		t.Skip("this CPU has neither AVX2+FMA nor AVX-512: only the generic Dot runs here")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for name, dot := range impls {
		for _, n := range []int{0, 1, 31, 32, 33, 63, 64, 65, 96, 127, 128, 129, 191, 192, 768, 1536, 4099} {
			for _, offset := range []int{0, 1, 3} {
				a, b := randomSlice(r, n+offset)[offset:], randomSlice(r, n+offset)[offset:]
				got, want := float64(dot(a, b)), naiveDot(a, b)
				// Float32 products summed in another order: rounding grows like sqrt(n) eps.
				if math.Abs(got-want) > 1e-5*math.Sqrt(float64(n+1))*(1+math.Abs(want)) {
					t.Errorf("%s n=%d offset=%d: got %v, exact %v, generic %v", name, n, offset, got, want, dotGeneric(a, b))
				}
			}
		}
	}
}

// TestMatVecRowsF32MatchesDefinition covers the four-row AVX-512 kernel: row
// counts around multiples of four, and column counts it takes or leaves to Dot,
// at each kernel level (the dispatch picks it only at avx512).
func TestMatVecRowsF32MatchesDefinition(t *testing.T) {
	atEachKernelLevel(t, checkMatVecRowsF32MatchesDefinition)
}

func checkMatVecRowsF32MatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, cols := range []int{16, 32, 64, 96, 768, 100} {
		for _, rows := range []int{1, 3, 4, 5, 8, 13} {
			w, x := randomSlice(r, rows*cols), randomSlice(r, cols)
			out := make([]float32, rows+1)
			out[rows] = 42 // a sentinel past the range
			matVecRowsF32(out, w, x, 1, rows)
			for i := 1; i < rows; i++ {
				want := naiveDot(w[i*cols:(i+1)*cols], x)
				if math.Abs(float64(out[i])-want) > 1e-5*math.Sqrt(float64(cols))*(1+math.Abs(want)) {
					t.Errorf("rows %d cols %d: out[%d] = %v, want %v", rows, cols, i, out[i], want)
				}
			}
			if out[0] != 0 || out[rows] != 42 {
				t.Errorf("rows %d cols %d: wrote outside [1, %d): %v %v", rows, cols, rows, out[0], out[rows])
			}
		}
	}
}

func BenchmarkDotImplementations(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x, y := randomSlice(r, 4096), randomSlice(r, 4096)
	impls := dotImplementations()
	impls["generic"] = dotGeneric
	for name, dot := range impls {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(8 * 4096)
			b.ResetTimer() // set-up is not timed
			for range b.N {
				dot(x, y)
			}
		})
	}
}
