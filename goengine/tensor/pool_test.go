package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// countTask records which parts ran, and on which workers.
type countTask struct {
	ran     []atomic.Int32
	threads int
	badW    atomic.Int32
}

func (c *countTask) Part(i, n, w int) {
	c.ran[i].Add(1)
	if w < 0 || w >= c.threads || n != len(c.ran) {
		c.badW.Add(1)
	}
}

func TestPoolRunsEveryPartOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := NewPool(threads)
		for _, parts := range []int{1, 2, 7, 100} {
			task := &countTask{ran: make([]atomic.Int32, parts), threads: threads}
			for range 50 {
				p.Run(task, parts)
			}
			for i := range task.ran {
				if got := task.ran[i].Load(); got != 50 {
					t.Errorf("%d threads, %d parts: part %d ran %d times in 50 runs", threads, parts, i, got)
				}
			}
			if task.badW.Load() != 0 {
				t.Errorf("%d threads, %d parts: a part saw a worker index or part count out of range", threads, parts)
			}
		}
		p.Close()
	}
}

// slowTask makes worker 1 late for its first part, as if the OS had given its
// core to another process: the other workers must take the remaining parts.
type slowTask struct {
	ranOn []atomic.Int32 // parts done by each worker
	delay atomic.Bool
}

func (s *slowTask) Part(i, n, w int) {
	if w == 1 && s.delay.CompareAndSwap(true, false) {
		time.Sleep(20 * time.Millisecond)
	}
	s.ranOn[w].Add(1)
}

func TestPoolPartsGoToWhoeverRuns(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	task := &slowTask{ranOn: make([]atomic.Int32, 2)}
	task.delay.Store(true)
	p.Run(task, 64)
	if got := task.ranOn[0].Load() + task.ranOn[1].Load(); got != 64 {
		t.Fatalf("%d parts ran, want 64", got)
	}
	if task.ranOn[0].Load() < 60 { // worker 1 slept through the run after its first part
		t.Errorf("the caller did %d of 64 parts while worker 1 was held up; parts must not wait for it", task.ranOn[0].Load())
	}
}

func TestPartRangeCoversAllInAlignedPieces(t *testing.T) {
	for _, total := range []int{0, 1, 15, 16, 17, 100, 1536} {
		for _, n := range []int{1, 2, 3, 7} {
			next := 0
			for i := range n {
				start, end := partRange(i, n, total, 16)
				if start != next || end < start || (end != total && end%16 != 0) {
					t.Fatalf("total %d, part %d of %d: [%d, %d) after %d", total, i, n, start, end, next)
				}
				next = end
			}
			if next != total {
				t.Fatalf("total %d in %d parts ends at %d", total, n, next)
			}
		}
	}
}

// TestMatVecAndMatMulMatchDefinition checks every storage type through the pool,
// on one and several threads, against float64 products of the stored values.
func TestMatVecAndMatMulMatchDefinition(t *testing.T) {
	atEachKernelLevel(t, checkMatVecAndMatMulMatchDefinition)
}

func checkMatVecAndMatMulMatchDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, threads := range []int{1, 2, 3} {
		p := NewPool(threads)
		defer p.Close()
		for _, shape := range [][2]int{{3, 32}, {64, 64}, {1000, 320}, {7, 2048}} {
			rows, cols := shape[0], shape[1]
			values := randomSlice(r, rows*cols)
			for _, w := range testMatrices(rows, cols, values) {
				name := fmt.Sprintf("%d threads, %s (%d, %d)", threads, w.Type, rows, cols)
				exact := make([]float32, rows*cols) // the values as stored
				for i := 0; i < rows; i++ {
					w.Row(exact[i*cols:(i+1)*cols], i)
				}
				for _, T := range []int{1, 3, smallBatch + 1} {
					x := randomSlice(r, T*cols)
					out := make([]float32, T*rows)
					if T == 1 {
						p.MatVec(out, x, &w)
					} else {
						p.MatMul(out, x, &w, T)
					}
					for tok := 0; tok < T; tok++ {
						xt := x[tok*cols : (tok+1)*cols]
						for i := 0; i < rows; i++ {
							want := naiveDot(exact[i*cols:(i+1)*cols], xt)
							// Float32 sums: rounding ~ sqrt(cols) eps of the terms. A Q8_0
							// MatVec (and up to smallBatch tokens) also rounds x to 8 bits
							// per block: an error of up to half a step of x per term,
							// d_x/2 * sum|w| <= |x|max/254 * sum|w|.
							tol := 1e-5 * math.Sqrt(float64(cols)) * (1 + math.Abs(want))
							if w.Type == Q8_0 && T <= smallBatch {
								tol += maxAbs(xt) / 254 * sumAbs(exact[i*cols:(i+1)*cols])
							}
							if got := float64(out[tok*rows+i]); math.Abs(got-want) > tol {
								t.Fatalf("%s T=%d: out[%d, %d] = %v, want %v ± %.2g", name, T, tok, i, got, want, tol)
							}
						}
					}
				}
			}
		}
	}
}

// testMatrices stores values as F32, F16 and Q8_0 matrices.
func testMatrices(rows, cols int, values []float32) []Matrix {
	f16 := make([]uint16, len(values))
	q8 := make([]byte, 0, len(values)/Q8BlockSize*Q8BlockBytes)
	for i, v := range values {
		f16[i] = float32ToF16(v)
	}
	for b := 0; b < len(values); b += Q8BlockSize {
		block := values[b : b+Q8BlockSize]
		d := maxAbs(block) / 127
		h := float32ToF16(float32(d))
		q8 = append(q8, byte(h), byte(h>>8))
		for _, v := range block {
			q8 = append(q8, byte(int8(math.Round(float64(v)/d))))
		}
	}
	return []Matrix{FromF32(rows, cols, values), {Rows: rows, Cols: cols, Type: F16, F16: f16}, {Rows: rows, Cols: cols, Type: Q8_0, Q8: q8}}
}

// float32ToF16 rounds through float64 bits well enough for test data: values
// here are normal halves, and the tests compare against the stored value.
func float32ToF16(v float32) uint16 {
	bits := math.Float32bits(v)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23&0xff) - 127 + 15
	if exp <= 0 {
		return sign
	}
	return sign | uint16(exp)<<10 | uint16(bits>>13&0x3ff)
}

func maxAbs(x []float32) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

func sumAbs(x []float32) float64 {
	s := 0.0
	for _, v := range x {
		s += math.Abs(float64(v))
	}
	return s
}

type nopTask struct{}

func (nopTask) Part(i, n, w int) {}

// BenchmarkPoolRun is the cost of waking the workers and waiting for them.
func BenchmarkPoolRun(b *testing.B) {
	p := NewPool(2)
	defer p.Close()
	b.ResetTimer() // set-up is not timed
	for range b.N {
		p.Run(nopTask{}, 2)
	}
}

func TestMemoryBandwidthMeasuresSomething(t *testing.T) {
	if bw := MemoryBandwidth(2, 8<<20); !(bw > 1e8 && bw < 1e13) { // 0.1 GB/s .. 10 TB/s
		t.Errorf("MemoryBandwidth = %g bytes/s", bw)
	}
}

// FromF32 wraps float32 values as an F32 matrix (no copy): test data.
func FromF32(rows, cols int, values []float32) Matrix {
	return Matrix{Rows: rows, Cols: cols, Type: F32, F32: values[:rows*cols]}
}
