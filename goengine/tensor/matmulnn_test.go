package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

type matMulNNFunc func(out []float32, ldo int, x []float32, ldx int, w []float32, ldw int, T, K, N int)

// matMulNNImpls lists the implementations the tests and benchmarks run; the
// amd64 test file adds the assembly ones. ok reports whether this CPU can run it.
var matMulNNImpls = []struct {
	name string
	fn   matMulNNFunc
	ok   func() bool
}{
	{"generic", matMulNNGeneric, func() bool { return true }},
	{"dispatch", MatMulNN, func() bool { return true }},
}

// matMulNNStrided lays rows of cols values out with stride cols+pad, NaN in
// between, so a kernel that reads a gap poisons its sums.
func matMulNNStrided(values []float32, rows, cols, pad int) []float32 {
	out := make([]float32, rows*(cols+pad))
	for i := range out {
		out[i] = float32(math.NaN())
	}
	for r := range rows {
		copy(out[r*(cols+pad):], values[r*cols:(r+1)*cols])
	}
	return out[:max(0, len(out)-pad)] // no gap after the last row: reading past it must fault or fail
}

// checkMatMulNNImpl runs fn against the float64 definition over shapes around
// every tile edge (token tiles of 3 and 4, column tiles of 32 and 64, the AVX2
// and AVX-512 column masks, odd K for the paired-k loops), with x and w
// contiguous and then strided, writing into a wider output (ldo = N+3) at an
// offset. Every float of the output buffer starts as a sentinel: inside the
// written region it must be overwritten, outside it must keep its exact bits.
func checkMatMulNNImpl(t *testing.T, fn matMulNNFunc) {
	r := rand.New(rand.NewPCG(21, 22))
	const sentinel = float32(-1.25e30)
	for _, pad := range []int{0, 5} {
		for _, T := range []int{1, 2, 3, 4, 5, 7, 8, 13} {
			for _, K := range []int{1, 3, 16, 17, 64, 100, 640} {
				for _, N := range []int{1, 5, 15, 16, 17, 63, 64, 65, 100, 640, 2048} {
					x, w := matMulRandom(r, T*K), matMulRandom(r, K*N)
					xs, ws := matMulNNStrided(x, T, K, pad), matMulNNStrided(w, K, N, pad)
					ldo, pre := N+3, 5
					buf := make([]float32, pre+T*ldo+7)
					for i := range buf {
						buf[i] = sentinel
					}
					fn(buf[pre:], ldo, xs, K+pad, ws, N+pad, T, K, N)
					want, sumAbs := make([]float64, N), make([]float64, N)
					for tok := range T {
						clear(want)
						clear(sumAbs)
						for k := range K {
							a := float64(x[tok*K+k])
							for j, b := range w[k*N : (k+1)*N] {
								want[j] += a * float64(b)
								sumAbs[j] += math.Abs(a * float64(b))
							}
						}
						for j := range N {
							got := buf[pre+tok*ldo+j]
							// float32 sums in another order than the float64 definition: the
							// rounding error grows like sqrt(K)·eps·Σ|terms| (4x margin).
							tol := 4 * math.Sqrt(float64(K)) * 0x1p-24 * sumAbs[j]
							if !(math.Abs(float64(got)-want[j]) <= tol) {
								t.Fatalf("T=%d K=%d N=%d pad=%d: out[%d][%d] = %v, want %v (tolerance %g)", T, K, N, pad, tok, j, got, want[j], tol)
							}
						}
					}
					for i, got := range buf {
						tok, j := (i-pre)/ldo, (i-pre)%ldo
						if (i < pre || tok >= T || j >= N) && got != sentinel {
							t.Fatalf("T=%d K=%d N=%d pad=%d: wrote %v at buffer[%d], outside the output", T, K, N, pad, got, i)
						}
					}
				}
			}
		}
	}
}

func TestMatMulNN(t *testing.T) {
	for _, impl := range matMulNNImpls {
		t.Run(impl.name, func(t *testing.T) {
			if !impl.ok() {
				t.Skip("this CPU lacks the instructions for " + impl.name)
			}
			checkMatMulNNImpl(t, impl.fn)
		})
	}
}

func TestMatMulNNZeroSizes(t *testing.T) {
	for _, impl := range matMulNNImpls {
		if !impl.ok() {
			continue
		}
		out := []float32{7, 7, 7, 7, 7}
		impl.fn(out, 3, nil, 0, nil, 2, 2, 0, 2) // empty sums are zero
		if out[0] != 0 || out[1] != 0 || out[2] != 7 || out[3] != 0 || out[4] != 0 {
			t.Errorf("%s K=0: out = %v, want [0 0 7 0 0]", impl.name, out)
		}
		impl.fn(nil, 0, nil, 16, nil, 0, 0, 16, 0) // nothing to write
		impl.fn(nil, 0, make([]float32, 32), 16, nil, 0, 2, 16, 0)
	}
}

func TestMatMulNNPanicsOnShortSlices(t *testing.T) {
	x, w, out := make([]float32, 3*16), make([]float32, 16*8), make([]float32, 3*8)
	for name, call := range map[string]func(){
		"short x":   func() { MatMulNN(out, 8, x[:47], 16, w, 8, 3, 16, 8) },
		"short w":   func() { MatMulNN(out, 8, x, 16, w[:127], 8, 3, 16, 8) },
		"short out": func() { MatMulNN(out[:23], 8, x, 16, w, 8, 3, 16, 8) },
		"ldx<K":     func() { MatMulNN(out, 8, x, 15, w, 8, 3, 16, 8) },
		"ldw<N":     func() { MatMulNN(out, 8, x, 16, w, 7, 3, 16, 8) },
		"ldo<N":     func() { MatMulNN(out, 7, x, 16, w, 8, 3, 16, 8) },
		"T<0":       func() { MatMulNN(out, 8, x, 16, w, 8, -1, 16, 8) },
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

// BenchmarkMatMulNN runs every implementation on the attention shapes of the
// seed model (head_dim 64, 3 query heads per KV group, context 2048), one core:
// decode scores (keys stored transposed, row stride 2048), decode output
// (values, row stride kv_dim 256), and a 256-token prompt's two products.
func BenchmarkMatMulNN(b *testing.B) {
	shapes := []struct{ T, K, N, ldw int }{
		{3, 64, 640, 2048},
		{3, 640, 64, 256},
		{3, 64, 2048, 2048},
		{256, 64, 512, 2048},
		{256, 512, 64, 256},
	}
	for _, impl := range matMulNNImpls {
		for _, s := range shapes {
			b.Run(fmt.Sprintf("%s/T=%d/K=%d/N=%d/ldw=%d", impl.name, s.T, s.K, s.N, s.ldw), func(b *testing.B) {
				if !impl.ok() {
					b.Skip("this CPU lacks the instructions for " + impl.name)
				}
				r := rand.New(rand.NewPCG(5, 6))
				x, w, out := matMulRandom(r, s.T*s.K), matMulRandom(r, (s.K-1)*s.ldw+s.N), make([]float32, s.T*s.N)
				b.ResetTimer() // set-up is not timed
				for range b.N {
					impl.fn(out, s.N, x, s.K, w, s.ldw, s.T, s.K, s.N)
				}
				flops := 2 * float64(s.T) * float64(s.K) * float64(s.N) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
