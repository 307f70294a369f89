package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gollm/goengine/gguf"
)

// blockTypes are the Blocks matrix types, each with the float16 scale fields
// of its blocks (byte offsets: d, and m or dmin where the type has one).
var blockTypes = []struct {
	t      gguf.TensorType
	scales []int
}{
	{gguf.Q4_0, []int{0}}, {gguf.Q4_1, []int{0, 2}}, {gguf.Q5_0, []int{0}}, {gguf.Q5_1, []int{0, 2}},
	{gguf.Q2_K, []int{80, 82}}, {gguf.Q3_K, []int{108}}, {gguf.Q4_K, []int{0, 2}}, {gguf.Q5_K, []int{0, 2}},
	{gguf.Q6_K, []int{208}}, {gguf.BF16, nil},
}

// randomBlocks returns a buffer whose bytes from offset on are nb blocks of
// type t: random bytes for the quants and sub-block scales, float16 scales
// of either sign between 2^-7 and 2, finite BF16 values of magnitude 2^-8..2^8.
func randomBlocks(r *rand.Rand, t gguf.TensorType, scales []int, nb, offset int) []byte {
	size := t.BlockBytes()
	w := make([]byte, offset+nb*size)[offset:]
	for i := range w {
		w[i] = byte(r.IntN(256))
	}
	for b := 0; b < nb; b++ {
		for _, off := range scales {
			binary.LittleEndian.PutUint16(w[b*size+off:], randomF16(r, 8, 16))
		}
		if t == gguf.BF16 {
			bits := uint16(r.IntN(2))<<15 | uint16(119+r.IntN(17))<<7 | uint16(r.IntN(128))
			binary.LittleEndian.PutUint16(w[b*size:], bits)
		}
	}
	return w
}

// activationFor quantizes x into the format a product with type t needs.
func activationFor(t gguf.TensorType, x []float32) *blockAct {
	var acts blockActs
	acts.quantize(x, 1, len(x), activationFormatOf(&Matrix{Type: Blocks, Quant: t}))
	a := acts.token(0)
	return &a
}

// blockRef is the definition of a row product: the row decoded by gguf (ggml's
// exact dequantization) times the activation its quantized values stand for,
// d·q, in float64; sumAbs is the sum of the terms' magnitudes.
func blockRef(t gguf.TensorType, w []byte, a *blockAct) (sum, sumAbs float64) {
	n := len(w) / t.BlockBytes() * t.BlockValues()
	values := make([]float32, n)
	gguf.DequantizeBlocks(t, values, w)
	for i, v := range values {
		x := float64(a.x[i])
		switch {
		case a.qk != nil:
			x = float64(a.dk[i/q8KBlock]) * float64(a.qk[i])
		case a.q8 != nil:
			x = float64(a.d8[i/Q8BlockSize]) * float64(a.q8[i])
		}
		sum += float64(v) * x
		sumAbs += math.Abs(float64(v) * x)
	}
	if a.s8 != nil {
		// Q4_1 and Q5_1 (their min m at byte 2 of a block) multiply m by
		// Q8_1's s, which stands for d·Σq but is its own rounding (float16,
		// of the d before d's): the definition uses it as it is.
		size := t.BlockBytes()
		for b := range len(w) / size {
			var sumQ int32
			for _, q := range a.q8[32*b : 32*b+32] {
				sumQ += int32(q)
			}
			m := float64(f16At(w[b*size+2:]))
			sum += m * (float64(a.s8[b]) - float64(a.d8[b])*float64(sumQ))
		}
	}
	return sum, sumAbs
}

// blockTestValues are row lengths, in values, around the kernels' unrolling.
func blockTestValues(t gguf.TensorType) []int {
	if t.BlockValues() == q8KBlock {
		return []int{256, 512, 768, 1536}
	}
	return []int{32, 64, 96, 128, 160, 224, 256, 288, 576, 1536}
}

// blockTolerance bounds a row product's float32 error: every weight decoded
// to float32 and every block scaled in float32 rounds by a few eps, and the
// float32 sums, in another order per implementation, grow like sqrt(blocks)·eps
// of Σ|terms|. A wrong quant, scale or block moves the result by a sizeable
// fraction of Σ|terms|, far past this.
func blockTolerance(values int, sumAbs float64) float64 {
	return 4e-6 * math.Sqrt(float64(values)/32+1) * sumAbs
}

// checkBlockDot runs the row product of every type, at the kernel level in
// use, on random rows at odd byte offsets, against the definition and the
// generic kernel.
func checkBlockDot(t *testing.T, dot func(gguf.TensorType, []byte, *blockAct) float32) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, bt := range blockTypes {
		for _, n := range blockTestValues(bt.t) {
			for _, offset := range []int{0, 1, 3} {
				nb := n / bt.t.BlockValues()
				w := randomBlocks(r, bt.t, bt.scales, nb, offset)
				x := randomSlice(r, n)
				a := activationFor(bt.t, x)
				got, generic := float64(dot(bt.t, w, a)), float64(blockDotGeneric(bt.t)(w, a))
				want, sumAbs := blockRef(bt.t, w, a)
				tol := blockTolerance(n, sumAbs)
				if math.Abs(got-want) > tol || math.Abs(got-generic) > tol || math.IsNaN(got) {
					t.Errorf("%s n=%d offset=%d: got %v, exact %v, generic %v (Σ|terms| %.3g)", bt.t, n, offset, got, want, generic, sumAbs)
				}
			}
		}
	}
}

func TestBlockDotGeneric(t *testing.T) {
	checkBlockDot(t, func(bt gguf.TensorType, w []byte, a *blockAct) float32 { return blockDotGeneric(bt)(w, a) })
}

// oneRow is matVecRowsBlocks on a one-row matrix: the row product at the
// kernel level in use.
func oneRow(bt gguf.TensorType, w []byte, a *blockAct) float32 {
	m := Matrix{Rows: 1, Cols: len(w) / bt.BlockBytes() * bt.BlockValues(), Type: Blocks, Quant: bt, Data: w}
	out := []float32{0}
	matVecRowsBlocks(out, &m, a, 0, 1)
	return out[0]
}

func TestBlockDot(t *testing.T) {
	atEachKernelLevel(t, func(t *testing.T) { checkBlockDot(t, oneRow) })
}

// TestBlockDotExtremes fills every quant and sub-block scale byte with 0x00,
// 0xff, 0x80 or 0x7f (the smallest and largest quants and scales), block
// scales of 1, against activations of ±127/64 (quantized to ±127 with d =
// ±1/64, exactly): the products where a kernel's int16 pair sums would
// saturate if any could, which would move them by far more than float32
// rounding (1e-6).
func TestBlockDotExtremes(t *testing.T) {
	atEachKernelLevel(t, func(t *testing.T) {
		for _, bt := range blockTypes {
			if bt.t == gguf.BF16 {
				continue
			}
			for _, fill := range []byte{0x00, 0xff, 0x80, 0x7f} {
				n := 2 * q8KBlock
				nb := n / bt.t.BlockValues()
				w := make([]byte, nb*bt.t.BlockBytes()+1)[1:]
				for i := range w {
					w[i] = fill
				}
				for b := 0; b < nb; b++ {
					for _, off := range bt.scales {
						binary.LittleEndian.PutUint16(w[b*bt.t.BlockBytes()+off:], 0x3c00) // 1.0
					}
				}
				for _, pattern := range []string{"+1", "-1", "alternating"} {
					x := make([]float32, n)
					for i := range x {
						x[i] = 127.0 / 64
						if pattern == "-1" || pattern == "alternating" && i%2 == 1 {
							x[i] = -127.0 / 64
						}
					}
					a := activationFor(bt.t, x)
					got := float64(oneRow(bt.t, w, a))
					want, _ := blockRef(bt.t, w, a)
					if math.Abs(got-want) > 1e-6*math.Abs(want) {
						t.Errorf("%s bytes %#02x, x %s: got %v, want %v", bt.t, fill, pattern, got, want)
					}
				}
			}
		}
	})
}

// TestMatVecRowsBlocks: each row of a range comes out bit for bit as it does
// alone, whatever range it is in, at every level; rows outside stay untouched.
func TestMatVecRowsBlocks(t *testing.T) {
	atEachKernelLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(43, 44))
		for _, bt := range blockTypes {
			cols := 512
			for _, start := range rowsStarts {
				for _, count := range rowsCounts {
					end := start + count
					rows := end + 1
					w := Matrix{Rows: rows, Cols: cols, Type: Blocks, Quant: bt.t,
						Data: randomBlocks(r, bt.t, bt.scales, rows*cols/bt.t.BlockValues(), 3)}
					a := activationFor(bt.t, randomSlice(r, cols))
					out := sentinels(rows + 1)
					matVecRowsBlocks(out, &w, a, start, end)
					what := fmt.Sprintf("%s rows [%d, %d)", bt.t, start, end)
					if !checkOutside(t, what, out, start, end) {
						continue
					}
					for i := start; i < end; i++ {
						one := []float32{0}
						row := Matrix{Rows: 1, Cols: cols, Type: Blocks, Quant: bt.t, Data: w.blocksRow(i)}
						matVecRowsBlocks(one, &row, a, 0, 1)
						if math.Float32bits(out[i]) != math.Float32bits(one[0]) {
							t.Errorf("%s: row %d = %v, alone %v: not bit for bit", what, i, out[i], one[0])
						}
					}
				}
			}
		}
	})
}

// TestBlockKernelsAgreeAcrossLevels: the avx512 level's kernels (VPDPBUSD
// for the 32-value types) give every row bit for bit what the avx2 level
// gives, on random blocks and on the extreme bytes of TestBlockDotExtremes,
// so a model decodes the same tokens at both levels.
func TestBlockKernelsAgreeAcrossLevels(t *testing.T) {
	if faster("avx512", cpuKernels()) {
		t.Skip("this CPU has no avx512 level")
	}
	r := rand.New(rand.NewPCG(47, 48))
	for _, bt := range blockTypes {
		rows, cols := 9, 1536
		nb := rows * cols / bt.t.BlockValues()
		for _, fill := range []int{-1, 0x00, 0xff, 0x80, 0x7f} {
			data := randomBlocks(r, bt.t, bt.scales, nb, 0)
			if fill >= 0 {
				for i := range data {
					if off := i % bt.t.BlockBytes(); !slices.Contains(bt.scales, off) && !slices.Contains(bt.scales, off-1) {
						data[i] = byte(fill) // every byte but the float16 scales
					}
				}
			}
			w := Matrix{Rows: rows, Cols: cols, Type: Blocks, Quant: bt.t, Data: data}
			a := activationFor(bt.t, randomSlice(r, cols))
			at := func(level string) []float32 {
				restore, err := SetKernels(level)
				if err != nil {
					t.Fatal(err)
				}
				defer restore()
				out := make([]float32, rows)
				matVecRowsBlocks(out, &w, a, 0, rows)
				return out
			}
			wide, narrow := at("avx512"), at("avx2")
			for i := range rows {
				if math.Float32bits(wide[i]) != math.Float32bits(narrow[i]) {
					t.Errorf("%s fill %d row %d: avx512 %v, avx2 %v", bt.t, fill, i, wide[i], narrow[i])
				}
			}
		}
	}
}

// TestMatVecBlocksMatchesDefinition runs Blocks matrices through the pool, on
// one and several threads: a few tokens (the decode products) against the
// quantized activations' definition, more than smallBatch (the prompt's
// matmul) against the float32 activations.
func TestMatVecBlocksMatchesDefinition(t *testing.T) {
	atEachKernelLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(45, 46))
		for _, threads := range []int{1, 3} {
			p := NewPool(threads)
			defer p.Close()
			for _, bt := range blockTypes {
				rows, cols := 37, 768
				w := Matrix{Rows: rows, Cols: cols, Type: Blocks, Quant: bt.t,
					Data: randomBlocks(r, bt.t, bt.scales, rows*cols/bt.t.BlockValues(), 0)}
				for _, T := range []int{1, 3, smallBatch + 1} {
					x := randomSlice(r, T*cols)
					out := make([]float32, T*rows)
					p.MatMul(out, x, &w, T)
					for tok := 0; tok < T; tok++ {
						xt := x[tok*cols : (tok+1)*cols]
						a := &blockAct{x: xt}
						if T <= smallBatch {
							a = activationFor(bt.t, xt)
						}
						for i := 0; i < rows; i++ {
							want, sumAbs := blockRef(bt.t, w.blocksRow(i), a)
							if got := float64(out[tok*rows+i]); math.Abs(got-want) > blockTolerance(cols, sumAbs) {
								t.Fatalf("%d threads, %s T=%d: out[%d, %d] = %v, want %v", threads, bt.t, T, tok, i, got, want)
							}
						}
					}
				}
			}
		}
	})
}

func TestQuantizeQ8KHandMadeBlock(t *testing.T) {
	x := make([]float32, 3*q8KBlock) // the second block all zero: d = 0, q = 0
	// max = -127/64, the first of the largest magnitudes: iscale = 64 and
	// d = 1/64, exactly; x·64 = ±0.5, ±1.5 and 2.5 tie and round to even.
	copy(x, []float32{1, -1.984375, 1.984375, 0.5 / 64, 1.5 / 64, -0.5 / 64, -1.5 / 64, 2.5 / 64})
	want := []int8{64, -127, 127, 0, 2, 0, -2, 2}
	// A positive max: iscale = -64, d = -1/64.
	x[2*q8KBlock], x[2*q8KBlock+1] = 1.984375, -1.984375
	q, d, bsums := make([]int8, len(x)), make([]float32, 3), make([]int16, len(x)/16)
	quantizeQ8K(q, d, bsums, x)
	if d[0] != 1.0/64 || d[1] != 0 || d[2] != -1.0/64 {
		t.Errorf("d = %v, want [1/64 0 -1/64]", d)
	}
	for i, w := range want {
		if q[i] != w {
			t.Errorf("q[%d] of x=%v: got %d, want %d", i, x[i], q[i], w)
		}
	}
	if q[2*q8KBlock] != -127 || q[2*q8KBlock+1] != 127 {
		t.Errorf("third block q = %v, want [-127 127]", q[2*q8KBlock:2*q8KBlock+2])
	}
	if bsums[0] != 66 || bsums[1] != 0 || bsums[16] != 0 || bsums[32] != 0 {
		t.Errorf("bsums = %v, want 66 then zeros", bsums)
	}
}

func TestQuantizeQ8KReconstructs(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	x := randomSlice(r, 8*q8KBlock)
	for i := range x[:q8KBlock] { // one block of tiny values, one of huge ones
		x[i] *= 1e-30
		x[q8KBlock+i] *= 1e30
	}
	q, d, bsums := make([]int8, len(x)), make([]float32, 8), make([]int16, len(x)/16)
	quantizeQ8K(q, d, bsums, x)
	for i, v := range x {
		db := float64(d[i/q8KBlock])
		if e := math.Abs(float64(q[i])*db - float64(v)); e > math.Abs(db)/2*(1+1e-6) {
			t.Fatalf("x[%d] = %v: |q·d - x| = %v > |d|/2 = %v", i, v, e, math.Abs(db)/2)
		}
	}
	for j, s := range bsums {
		var want int16
		for _, v := range q[16*j : 16*j+16] {
			want += int16(v)
		}
		if s != want {
			t.Fatalf("bsums[%d] = %d, want %d", j, s, want)
		}
	}
}

// blockBenchShapes are SmolLM2-135M's decode products: q and o (576→576),
// gate and up (576→1536), down (1536→576), and a head of 49152 rows.
var blockBenchShapes = [][2]int{{576, 576}, {1536, 576}, {576, 1536}, {49152, 576}}

// BenchmarkMatVecBlocks measures one decode product per type and shape
// through a two-thread pool, activation quantization included; MB/s of
// weight bytes. Shapes a type cannot store (576 is not whole K-quant blocks)
// are left out.
func BenchmarkMatVecBlocks(b *testing.B) {
	p := NewPool(2)
	defer p.Close()
	for _, bt := range blockTypes {
		for _, shape := range blockBenchShapes {
			rows, cols := shape[0], shape[1]
			if cols%bt.t.BlockValues() != 0 {
				continue
			}
			r := rand.New(rand.NewPCG(49, 50))
			w := Matrix{Rows: rows, Cols: cols, Type: Blocks, Quant: bt.t,
				Data: randomBlocks(r, bt.t, bt.scales, rows*cols/bt.t.BlockValues(), 0)}
			x, out := randomSlice(r, cols), make([]float32, rows)
			b.Run(fmt.Sprintf("%s/%dx%d", bt.t, rows, cols), func(b *testing.B) {
				b.SetBytes(w.ByteSize())
				for range b.N {
					p.MatVec(out, x, &w)
				}
			})
		}
	}
}

// BenchmarkRowsBlocks measures matVecRowsBlocks on one thread at each kernel
// level, eight rows per call as matVecTask.rowsOf makes them; MB/s of weight
// bytes.
func BenchmarkRowsBlocks(b *testing.B) {
	for _, level := range KernelLevels() {
		restore, err := SetKernels(level)
		if err != nil {
			continue
		}
		for _, bt := range blockTypes {
			for _, shape := range blockBenchShapes[1:] {
				rows, cols := shape[0], shape[1]
				if cols%bt.t.BlockValues() != 0 {
					continue
				}
				r := rand.New(rand.NewPCG(51, 52))
				w := Matrix{Rows: rows, Cols: cols, Type: Blocks, Quant: bt.t,
					Data: randomBlocks(r, bt.t, bt.scales, rows*cols/bt.t.BlockValues(), 0)}
				a, out := activationFor(bt.t, randomSlice(r, cols)), make([]float32, rows)
				b.Run(fmt.Sprintf("%s/%s/%dx%d", level, bt.t, rows, cols), func(b *testing.B) {
					b.SetBytes(w.ByteSize())
					for range b.N {
						for r0 := 0; r0 < rows; r0 += 8 {
							matVecRowsBlocks(out, &w, a, r0, min(r0+8, rows))
						}
					}
				})
			}
		}
		restore()
	}
}
