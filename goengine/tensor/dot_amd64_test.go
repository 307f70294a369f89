//go:build !purego

package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDotAVX2MatchesGeneric runs the assembly against the generic loop on lengths
// around every boundary of its 32-wide loop, with offsets that misalign the slices.
func TestDotAVX2MatchesGeneric(t *testing.T) {
	if !useAVX2 {
		t.Skip("this CPU has no AVX2+FMA: only the generic Dot runs here")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{32, 33, 63, 64, 65, 96, 127, 128, 129, 768, 1536, 4099} {
		for _, offset := range []int{0, 1, 3} {
			a, b := randomSlice(r, n+offset)[offset:], randomSlice(r, n+offset)[offset:]
			got, want := float64(dotAVX2Slices(a, b)), naiveDot(a, b)
			// Both sum float32 products in a different order: rounding grows like sqrt(n) eps.
			if math.Abs(got-want) > 1e-5*math.Sqrt(float64(n))*(1+math.Abs(want)) {
				t.Errorf("n=%d offset=%d: AVX2 %v, exact %v, generic %v", n, offset, got, want, dotGeneric(a, b))
			}
		}
	}
}

func BenchmarkDotImplementations(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x, y := randomSlice(r, 4096), randomSlice(r, 4096)
	b.Run("generic", func(b *testing.B) {
		b.SetBytes(8 * 4096)
		for b.Loop() {
			dotGeneric(x, y)
		}
	})
	if useAVX2 {
		b.Run("avx2", func(b *testing.B) {
			b.SetBytes(8 * 4096)
			for b.Loop() {
				dotAVX2Slices(x, y)
			}
		})
	}
}
