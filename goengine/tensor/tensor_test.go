package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randomSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// naiveDot is the definition, accumulated in float64.
func naiveDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestDotMatchesDefinition(t *testing.T) { atEachKernelLevel(t, checkDotMatchesDefinition) }

func checkDotMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 4, 5, 7, 64, 193, 1000} {
		a, b := randomSlice(r, n), randomSlice(r, n)
		got, want := float64(Dot(a, b)), naiveDot(a, b)
		if math.Abs(got-want) > 1e-5*float64(n+1) {
			t.Errorf("Dot n=%d: got %v, want %v", n, got, want)
		}
	}
}

func TestRMSNormUnitRMSTimesWeight(t *testing.T) {
	x := []float32{3, 4}
	out := make([]float32, 2)
	RMSNorm(out, x, []float32{1, 2}, 0)
	// mean(x^2) = 12.5, rms = 3.5355339: (0.8485281, 1.1313709 * 2)
	want := []float32{0.8485281, 2.2627417}
	for i := range want {
		if math.Abs(float64(out[i]-want[i])) > 1e-6 {
			t.Errorf("RMSNorm[%d] = %v, want %v", i, out[i], want[i])
		}
	}
}

func TestSoftmaxSumsToOneAndIsStable(t *testing.T) {
	atEachKernelLevel(t, checkSoftmaxSumsToOneAndIsStable)
}

func checkSoftmaxSumsToOneAndIsStable(t *testing.T) {
	x := []float32{1000, 1001, 999}
	Softmax(x)
	var sum float32
	for _, v := range x {
		sum += v
	}
	if math.Abs(float64(sum-1)) > 1e-6 || !(x[1] > x[0] && x[0] > x[2]) {
		t.Errorf("Softmax = %v", x)
	}
}

// BenchmarkMatVec measures the seed model's products as a decode step meets
// them: from memory (the matrices rotate through 200 MiB, past the L3 cache),
// on one thread and on two. MB/s is weight bytes read.
func BenchmarkMatVec(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, shape := range [][2]int{{256, 768}, {768, 768}, {1536, 768}, {768, 1536}, {32768, 768}} {
		rows, cols := shape[0], shape[1]
		copies := max(1, 200<<20/(4*rows*cols))
		ws := make([]Matrix, copies)
		for i := range ws {
			ws[i] = FromF32(rows, cols, randomSlice(r, rows*cols))
		}
		x, out := randomSlice(r, cols), make([]float32, rows)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%d/threads=%d", rows, cols, threads), func(b *testing.B) {
				p := NewPool(threads)
				defer p.Close()
				b.SetBytes(int64(4 * rows * cols))
				i := 0
				b.ResetTimer() // set-up is not timed
				for range b.N {
					p.MatVec(out, x, &ws[i%copies])
					i++
				}
			})
		}
	}
}
