package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The row kernels under test: each with the one-row function it must match bit
// for bit. rows_amd64_test.go appends the assembly levels this CPU runs.
type (
	rowsQ8Func  func(out []float32, w []byte, rowBytes int, xq []int8, xs []float32, start, end int)
	rowsF16Func func(out []float32, w []uint16, cols int, x []float32, start, end int)
	rowsQ8Impl  struct {
		name string
		rows rowsQ8Func
		one  dotQ8Func
	}
	rowsF16Impl struct {
		name string
		rows rowsF16Func
		one  dotF16Func
	}
)

var (
	rowsQ8Impls = []rowsQ8Impl{
		{"generic", matVecRowsQ8Generic, dotQ8Generic},
		{"matVecRowsQ8", matVecRowsQ8, DotQ8},
	}
	rowsF16Impls = []rowsF16Impl{
		{"generic", matVecRowsF16Generic, dotF16Generic},
		{"matVecRowsF16", matVecRowsF16, DotF16},
	}
)

// rowsStarts and rowsCounts place [start, end) around every multiple of four.
var (
	rowsStarts = []int{0, 1, 3, 5}
	rowsCounts = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
)

const rowsSentinel = 42

// checkOutside fails if an element of out outside [start, end) is no longer the
// sentinel that sentinels put there.
func checkOutside(t *testing.T, what string, out []float32, start, end int) bool {
	t.Helper()
	for i, v := range out {
		if (i < start || i >= end) && v != rowsSentinel {
			t.Errorf("%s: wrote out[%d] = %v outside [%d, %d)", what, i, v, start, end)
			return false
		}
	}
	return true
}

func sentinels(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = rowsSentinel
	}
	return out
}

// checkRowsQ8 runs im.rows over matrices of every row length in blocks and row
// range, with rows at odd byte offsets: each row's result must be im.one's bit
// for bit, and within tolerance of the generic loop and the float64 definition.
func checkRowsQ8(t *testing.T, im rowsQ8Impl) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, nb := range []int{1, 2, 3, 4, 5, 24, 48} {
		rowBytes := nb * Q8BlockBytes
		for _, offset := range []int{0, 1, 3} {
			for _, start := range rowsStarts {
				for _, count := range rowsCounts {
					end := start + count
					rows := end + 1 // a row past end that must not be read into out
					w := randomQ8Row(r, rows*nb, offset)
					x := randomSlice(r, nb*Q8BlockSize)
					xq := make([]int8, len(x)+offset)[offset:]
					xs := make([]float32, nb+1)[1:]
					QuantizeQ8(xq, xs, x)
					out := sentinels(rows + 1)
					im.rows(out, w, rowBytes, xq, xs, start, end)
					what := fmt.Sprintf("%s nb=%d offset=%d rows [%d, %d)", im.name, nb, offset, start, end)
					if !checkOutside(t, what, out, start, end) {
						continue
					}
					for i := start; i < end; i++ {
						row := w[i*rowBytes : (i+1)*rowBytes]
						got, one := out[i], im.one(row, xq, xs)
						if math.Float32bits(got) != math.Float32bits(one) {
							t.Errorf("%s: row %d = %v (%#08x), one-row %v (%#08x): not bit for bit",
								what, i, got, math.Float32bits(got), one, math.Float32bits(one))
						}
						generic := float64(dotQ8Generic(row, xq, xs))
						want, sumAbs := q8Ref(row, xq, xs)
						// As in checkDotQ8: exact int32 block sums, float32 scaling
						// and sums in another order, ~sqrt(nb)·eps·Σ|terms|.
						tol := 1e-6 * math.Sqrt(float64(nb)+1) * sumAbs
						if e := float64(got); math.Abs(e-want) > tol || math.Abs(e-generic) > tol {
							t.Errorf("%s: row %d = %v, exact %v, generic %v", what, i, got, want, generic)
						}
					}
				}
			}
		}
	}
}

// checkRowsQ8Saturation is checkDotQ8Saturation over 13 rows of w = -128 at an
// odd offset, each row against x = ±127: every result must be exact.
func checkRowsQ8Saturation(t *testing.T, im rowsQ8Impl) {
	for _, nb := range []int{1, 5, 9, 48} {
		const rows = 13
		rowBytes := nb * Q8BlockBytes
		w, xs := saturatedQ8(rows*nb, nb)
		xq := make([]int8, nb*Q8BlockSize)
		forSaturationPatterns(xq, func(pattern string, want float64) {
			out := sentinels(rows)
			im.rows(out, w, rowBytes, xq, xs, 1, rows)
			for i := 1; i < rows; i++ {
				if float64(out[i]) != want {
					t.Errorf("%s nb=%d, w = -128, x %s: row %d = %v, want %v", im.name, nb, pattern, i, out[i], want)
				}
			}
			checkOutside(t, im.name, out, 1, rows)
		})
	}
}

func TestMatVecRowsQ8(t *testing.T) {
	for _, im := range rowsQ8Impls {
		t.Run(im.name, func(t *testing.T) {
			checkRowsQ8(t, im)
			checkRowsQ8Saturation(t, im)
			// Empty ranges and empty rows write nothing / zeros.
			out := sentinels(3)
			im.rows(out, nil, 0, nil, nil, 0, 0)
			im.rows(out, nil, Q8BlockBytes, nil, nil, 2, 2)
			checkOutside(t, im.name+" empty range", out, 0, 0)
			im.rows(out, nil, 0, nil, nil, 0, 3)
			for i, v := range out {
				if v != 0 {
					t.Errorf("%s: empty row %d = %v, want 0", im.name, i, v)
				}
			}
		})
	}
}

func TestMatVecRowsQ8LengthPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("matVecRowsQ8 with 35-byte rows did not panic")
		}
	}()
	matVecRowsQ8(make([]float32, 4), make([]byte, 4*35), 35, make([]int8, 64), make([]float32, 2), 0, 4)
}

// rowsF16Cols covers the tails of the 8-, 16- and 64-wide loops and the seed
// model's widths.
var rowsF16Cols = []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 79, 80, 100, 127, 128, 129, 255, 256, 257, 768, 1000}

// checkRowsF16 is checkRowsQ8 for float16 matrices, rows misaligned by offset
// elements (the file guarantees 2 bytes).
func checkRowsF16(t *testing.T, im rowsF16Impl) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, cols := range rowsF16Cols {
		for _, offset := range []int{0, 1, 3} {
			for _, start := range rowsStarts {
				for _, count := range rowsCounts {
					end := start + count
					rows := end + 1
					w := make([]uint16, rows*cols+offset)[offset:]
					for i := range w {
						w[i] = randomF16(r, 0, 30) // subnormals to 65504
					}
					x := randomSlice(r, cols+offset+1)[offset:] // longer than cols
					out := sentinels(rows + 1)
					im.rows(out, w, cols, x, start, end)
					what := fmt.Sprintf("%s cols=%d offset=%d rows [%d, %d)", im.name, cols, offset, start, end)
					if !checkOutside(t, what, out, start, end) {
						continue
					}
					for i := start; i < end; i++ {
						row := w[i*cols : (i+1)*cols]
						got, one := out[i], im.one(row, x)
						if math.Float32bits(got) != math.Float32bits(one) {
							t.Errorf("%s: row %d = %v (%#08x), one-row %v (%#08x): not bit for bit",
								what, i, got, math.Float32bits(got), one, math.Float32bits(one))
						}
						var want, sumAbs float64
						for j, h := range row {
							want += f16Ref(h) * float64(x[j])
							sumAbs += math.Abs(f16Ref(h) * float64(x[j]))
						}
						generic := float64(dotF16Generic(row, x))
						// As in checkDotF16: float32 products summed in another order.
						tol := 1e-6 * math.Sqrt(float64(cols)+1) * sumAbs
						if e := float64(got); math.Abs(e-want) > tol || math.Abs(e-generic) > tol {
							t.Errorf("%s: row %d = %v, exact %v, generic %v", what, i, got, want, generic)
						}
					}
				}
			}
		}
	}
}

func TestMatVecRowsF16(t *testing.T) {
	for _, im := range rowsF16Impls {
		t.Run(im.name, func(t *testing.T) { checkRowsF16(t, im) })
	}
}

// rowsBenchShapes: the seed model's 1536x768 matrix (1.2 MB in Q8_0, in L2/L3)
// and its 32768x768 output head, far out of cache.
var rowsBenchShapes = [][2]int{{1536, 768}, {32768, 768}}

// BenchmarkRowsQ8 compares, per level, the one-row loop (one call per row, as
// matVecTask.rowsOf does today) with the row kernel called eight rows at a time
// (as rowsOf would); MB/s of Q8_0 weight bytes.
func BenchmarkRowsQ8(b *testing.B) {
	for _, shape := range rowsBenchShapes {
		rows, cols := shape[0], shape[1]
		r := rand.New(rand.NewPCG(35, 36))
		rowBytes := cols / Q8BlockSize * Q8BlockBytes
		w := randomQ8Row(r, rows*cols/Q8BlockSize, 0)
		xq, xs := make([]int8, cols), make([]float32, cols/Q8BlockSize)
		QuantizeQ8(xq, xs, randomSlice(r, cols))
		out := make([]float32, rows)
		for _, im := range rowsQ8Impls {
			b.Run(fmt.Sprintf("%dx%d/%s/onerow", rows, cols, im.name), func(b *testing.B) {
				b.SetBytes(int64(rows * rowBytes))
				b.ResetTimer() // set-up is not timed
				for range b.N {
					for i := range out {
						out[i] = im.one(w[i*rowBytes:(i+1)*rowBytes], xq, xs)
					}
				}
			})
			b.Run(fmt.Sprintf("%dx%d/%s/rows", rows, cols, im.name), func(b *testing.B) {
				b.SetBytes(int64(rows * rowBytes))
				b.ResetTimer() // set-up is not timed
				for range b.N {
					for r0 := 0; r0 < rows; r0 += 8 {
						im.rows(out, w, rowBytes, xq, xs, r0, min(r0+8, rows))
					}
				}
			})
		}
	}
}

// BenchmarkRowsF16 is BenchmarkRowsQ8 for float16 weights.
func BenchmarkRowsF16(b *testing.B) {
	for _, shape := range rowsBenchShapes {
		rows, cols := shape[0], shape[1]
		r := rand.New(rand.NewPCG(37, 38))
		w := make([]uint16, rows*cols)
		for i := range w {
			w[i] = randomF16(r, 10, 18)
		}
		x, out := randomSlice(r, cols), make([]float32, rows)
		for _, im := range rowsF16Impls {
			b.Run(fmt.Sprintf("%dx%d/%s/onerow", rows, cols, im.name), func(b *testing.B) {
				b.SetBytes(int64(2 * rows * cols))
				b.ResetTimer() // set-up is not timed
				for range b.N {
					for i := range out {
						out[i] = im.one(w[i*cols:(i+1)*cols], x)
					}
				}
			})
			b.Run(fmt.Sprintf("%dx%d/%s/rows", rows, cols, im.name), func(b *testing.B) {
				b.SetBytes(int64(2 * rows * cols))
				b.ResetTimer() // set-up is not timed
				for range b.N {
					for r0 := 0; r0 < rows; r0 += 8 {
						im.rows(out, w, cols, x, r0, min(r0+8, rows))
					}
				}
			})
		}
	}
}
