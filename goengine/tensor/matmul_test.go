package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

type matMulFunc func(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int)

// matMulImpls lists the implementations the benchmark compares; the amd64 test
// file adds the assembly ones. ok reports whether this CPU can run it.
var matMulImpls = []struct {
	name string
	fn   matMulFunc
	ok   func() bool
}{
	{"generic", matMulGeneric, func() bool { return true }},
	{"dispatch", MatMulNT, func() bool { return true }},
}

func matMulRandom(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// checkMatMulImpl runs fn against the float64 definition over shapes around
// every tile edge (1100 columns: two k passes, the last with a tail), writing
// into a wider output (ldo > rows) at an offset. Every float of the buffer
// starts as a sentinel: inside the written region it must be overwritten,
// outside it must keep its exact bits. W and X are contiguous and then strided
// (ldw, ldx > cols) with NaN between rows, which poisons any sum that reads it.
func checkMatMulImpl(t *testing.T, fn matMulFunc) {
	for _, pad := range []int{0, 5} {
		checkMatMulStrides(t, fn, pad)
	}
}

// strided lays rows of cols values out with stride cols+pad, NaN in between.
func strided(values []float32, rows, cols, pad int) []float32 {
	out := make([]float32, rows*(cols+pad))
	for i := range out {
		out[i] = float32(math.NaN())
	}
	for r := 0; r < rows; r++ {
		copy(out[r*(cols+pad):], values[r*cols:(r+1)*cols])
	}
	return out[:max(0, len(out)-pad)]
}

func checkMatMulStrides(t *testing.T, fn matMulFunc, pad int) {
	r := rand.New(rand.NewPCG(11, 12))
	const sentinel = float32(-1.25e30)
	for _, T := range []int{1, 2, 3, 4, 5, 7, 8, 13, 64} {
		for _, rows := range []int{1, 3, 4, 5, 8, 17, 64} {
			for _, cols := range []int{1, 7, 16, 17, 32, 48, 100, 768, 1100} {
				w, x := matMulRandom(r, rows*cols), matMulRandom(r, T*cols)
				ws, xs := strided(w, rows, cols, pad), strided(x, T, cols, pad)
				ldo, pre := rows+3, 5
				buf := make([]float32, pre+T*ldo+7)
				for i := range buf {
					buf[i] = sentinel
				}
				fn(buf[pre:], ldo, xs, cols+pad, ws, cols+pad, T, cols, rows)
				for i, got := range buf {
					tok, row := (i-pre)/ldo, (i-pre)%ldo
					if i < pre || tok >= T || row >= rows {
						if got != sentinel {
							t.Fatalf("T=%d rows=%d cols=%d pad=%d: wrote %v at buffer[%d], outside the output", T, rows, cols, pad, got, i)
						}
						continue
					}
					var want, sumAbs float64
					for k := range cols {
						p := float64(x[tok*cols+k]) * float64(w[row*cols+k])
						want += p
						sumAbs += math.Abs(p)
					}
					// float32 sums in another order than the float64 definition: the
					// rounding error grows like sqrt(cols)·eps·Σ|terms| (4x margin).
					tol := 4 * math.Sqrt(float64(cols)) * 0x1p-24 * sumAbs
					if math.Abs(float64(got)-want) > tol {
						t.Fatalf("T=%d rows=%d cols=%d pad=%d: out[%d][%d] = %v, want %v (tolerance %g)", T, rows, cols, pad, tok, row, got, want, tol)
					}
				}
			}
		}
	}
}

func TestMatMulGeneric(t *testing.T) { checkMatMulImpl(t, matMulGeneric) }

func TestMatMulNT(t *testing.T) { checkMatMulImpl(t, MatMulNT) }

func TestMatMulZeroSizes(t *testing.T) {
	out := []float32{7, 7, 7, 7}
	MatMulNT(out, 2, nil, 0, nil, 0, 2, 0, 2) // empty sums are zero
	if out[0] != 0 || out[1] != 0 || out[2] != 0 || out[3] != 0 {
		t.Errorf("cols=0: out = %v, want zeros", out)
	}
	MatMulNT(nil, 0, nil, 16, nil, 16, 0, 16, 0) // nothing to write
}

func TestMatMulPanicsOnShortSlices(t *testing.T) {
	w, x, out := make([]float32, 4*16), make([]float32, 4*16), make([]float32, 16)
	for name, call := range map[string]func(){
		"short w":   func() { MatMulNT(out, 4, x, 16, w[:63], 16, 4, 16, 4) },
		"short x":   func() { MatMulNT(out, 4, x[:63], 16, w, 16, 4, 16, 4) },
		"short out": func() { MatMulNT(out[:15], 4, x, 16, w, 16, 4, 16, 4) },
		"ldo<N":     func() { MatMulNT(out, 3, x, 16, w, 16, 4, 16, 4) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			call()
		}()
	}
}

// BenchmarkMatMul runs every implementation on the seed model's layer shapes
// (rows, cols) at T = 64 and 512 tokens, single-threaded.
func BenchmarkMatMul(b *testing.B) {
	shapes := [][2]int{{768, 768}, {256, 768}, {1536, 768}, {768, 1536}}
	for _, impl := range matMulImpls {
		for _, T := range []int{64, 512} {
			for _, shape := range shapes {
				rows, cols := shape[0], shape[1]
				b.Run(fmt.Sprintf("%s/T=%d/%dx%d", impl.name, T, rows, cols), func(b *testing.B) {
					if !impl.ok() {
						b.Skip("this CPU lacks the instructions for " + impl.name)
					}
					r := rand.New(rand.NewPCG(5, 6))
					w, x, out := matMulRandom(r, rows*cols), matMulRandom(r, T*cols), make([]float32, T*rows)
					b.ResetTimer() // set-up is not timed
					for range b.N {
						impl.fn(out, rows, x, cols, w, cols, T, cols, rows)
					}
					flops := 2 * float64(T) * float64(rows) * float64(cols) * float64(b.N)
					b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
