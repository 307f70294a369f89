package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gollm/goengine/gguf"
)

// The implementations under test and benchmark: the generic ones here, the
// assembly ones appended by quant_amd64_test.go when the CPU has them.
type (
	dotQ8Func  func(w []byte, xq []int8, xs []float32) float32
	dotF16Func func(w []uint16, x []float32) float32
	namedQ8    struct {
		name string
		f    dotQ8Func
	}
	namedF16 struct {
		name string
		f    dotF16Func
	}
)

var (
	dotQ8Impls  = []namedQ8{{"generic", dotQ8Generic}}
	dotF16Impls = []namedF16{{"generic", dotF16Generic}}
)

// f16Ref is the float16 definition, written independently of f16ToF32:
// (-1)^s · 2^(e-15) · (1 + m/1024) for normal e, 2^-14 · m/1024 for e = 0.
func f16Ref(h uint16) float64 {
	s, e, m := h>>15, int(h>>10&31), float64(h&1023)
	v := 0.0
	switch e {
	case 31:
		if m != 0 {
			return math.NaN()
		}
		v = math.Inf(1)
	case 0:
		v = math.Ldexp(m/1024, -14)
	default:
		v = math.Ldexp(1+m/1024, e-15)
	}
	if s == 1 {
		v = -v
	}
	return v
}

// randomF16 returns a finite half float with exponent field in [lo, hi], a
// random mantissa and sign.
func randomF16(r *rand.Rand, lo, hi int) uint16 {
	e := lo + r.IntN(hi-lo+1)
	return uint16(r.IntN(2))<<15 | uint16(e)<<10 | uint16(r.IntN(1024))
}

// randomQ8Row returns a buffer whose bytes from offset on are nb Q8_0 blocks with
// scales around 2^-4..2^4 and q over the full int8 range, -128 included.
func randomQ8Row(r *rand.Rand, nb, offset int) []byte {
	buf := make([]byte, offset+nb*Q8BlockBytes)
	w := buf[offset:]
	for b := 0; b < nb; b++ {
		d := randomF16(r, 11, 19)
		w[b*Q8BlockBytes], w[b*Q8BlockBytes+1] = byte(d), byte(d>>8)
		for i := 2; i < Q8BlockBytes; i++ {
			w[b*Q8BlockBytes+i] = byte(r.IntN(256))
		}
	}
	return w
}

// q8Ref is the Q8_0 dot product's definition in float64, with the sum of the
// absolute values of its terms for error bounds.
func q8Ref(w []byte, xq []int8, xs []float32) (sum, sumAbs float64) {
	for b := 0; b < len(w)/Q8BlockBytes; b++ {
		blk := w[b*Q8BlockBytes:]
		d := f16Ref(uint16(blk[0]) | uint16(blk[1])<<8)
		for i := 0; i < Q8BlockSize; i++ {
			t := d * float64(xs[b]) * float64(int8(blk[2+i])) * float64(xq[b*Q8BlockSize+i])
			sum += t
			sumAbs += math.Abs(t)
		}
	}
	return sum, sumAbs
}

func TestF16ToF32AllBitPatterns(t *testing.T) {
	for h := range 1 << 16 {
		got, want := f16ToF32(uint16(h)), f16Ref(uint16(h))
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Errorf("f16ToF32(%#04x) = %v, want NaN", h, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Errorf("f16ToF32(%#04x) = %v, want %v", h, got, want)
		}
	}
}

func TestQuantizeQ8HandMadeBlocks(t *testing.T) {
	// amax 127: d = 1 and id = 127/127 = 1, so x·id = x, and the ties at .5
	// round to even, as _mm256_round_ps does in llama.cpp's AVX2 quantizer.
	x1 := []float32{127, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 1.4999999, 0, -0.50000006}
	q1 := []int8{127, 0, 0, 2, -2, 2, -2, 126, -126, 1, 0, -1}
	// amax from a negative value, -254: d = 2, id = 0.5.
	x2 := []float32{-254, 5, -5, 1, -1, 3, 253, 0.9}
	q2 := []int8{-127, 2, -2, 0, 0, 2, 126, 0}
	// amax 127.0127: d = 1.0001, which float16 rounds to 1; q is computed
	// with the float32 id = 127/amax, before that rounding.
	x3 := []float32{127.0127, 63.5}
	q3 := []int8{127, 63}               // 63.5·id = 63.4937
	x := make([]float32, 5*Q8BlockSize) // fourth block all zero: d = 0, q = 0
	want := make([]int8, len(x))
	for b, blk := range [][2][]float32{{x1}, {x2}, {x3}} {
		copy(x[b*Q8BlockSize:], blk[0])
	}
	copy(want, q1)
	copy(want[Q8BlockSize:], q2)
	copy(want[2*Q8BlockSize:], q3)
	// Fifth block: amax 2⁻²⁰, d = 2⁻²⁰/127 below float16's smallest half step
	// (2⁻²⁵): d rounds to 0, as ggml stores it, while q keeps full range.
	x[4*Q8BlockSize], x[4*Q8BlockSize+1] = 0x1p-20, -0x1p-21
	want[4*Q8BlockSize], want[4*Q8BlockSize+1] = 127, -64 // -63.5 to even
	xq, xs := make([]int8, len(x)), make([]float32, 5)
	QuantizeQ8(xq, xs, x)
	if xs[0] != 1 || xs[1] != 2 || xs[2] != 1 || xs[3] != 0 || xs[4] != 0 {
		t.Errorf("scales = %v, want [1 2 1 0 0]", xs)
	}
	for i := range want {
		if xq[i] != want[i] {
			t.Errorf("q[%d] of x=%v: got %d, want %d", i, x[i], xq[i], want[i])
		}
	}
}

// q8Scale is a block's max|x| and the float16 d that ggml stores for it.
func q8Scale(blk []float32) (amax, d float32) {
	for _, v := range blk {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	return amax, float32(f16Ref(gguf.Float32ToFloat16(amax / 127)))
}

func TestQuantizeQ8MatchesLlamaCppAndReconstructs(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := randomSlice(r, 64*Q8BlockSize)
	for i := range x[:Q8BlockSize] { // one block of small values, one of large ones
		x[i] *= 1e-3
		x[Q8BlockSize+i] *= 1e3
	}
	xq, xs := make([]int8, len(x)), make([]float32, len(x)/Q8BlockSize)
	QuantizeQ8(xq, xs, x)
	for b, d := range xs {
		amax, want := q8Scale(x[b*Q8BlockSize : (b+1)*Q8BlockSize])
		if d != want {
			t.Fatalf("block %d: d = %v, want float16(%v) = %v", b, d, amax/127, want)
		}
		id := 127 / amax
		for i := b * Q8BlockSize; i < (b+1)*Q8BlockSize; i++ {
			// llama.cpp's AVX2 quantize_row_q8_0: x·(127/max) rounded to float32,
			// then to the nearest integer, ties to even.
			if want := int8(math.RoundToEven(float64(x[i] * id))); xq[i] != want {
				t.Fatalf("x[%d] = %v: q = %d, want %d", i, x[i], xq[i], want)
			}
			// q·d is within half a step of x, plus d's rounding to float16
			// (2⁻¹¹ relative, times |q| ≤ 127) and float32's in id.
			if e := math.Abs(float64(xq[i])*float64(d) - float64(x[i])); e > float64(amax)/127*(0.5+127*0x1p-11+1e-5) {
				t.Fatalf("x[%d] = %v: |q·d - x| = %v, more than half a step of %v", i, x[i], e, amax/127)
			}
		}
	}
}

func TestQuantizeQ8_1(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	x := randomSlice(r, 24*Q8BlockSize)
	xq, xd, s := make([]int8, len(x)), make([]float32, len(x)/Q8BlockSize), make([]float32, len(x)/Q8BlockSize)
	quantizeQ8_1(xq, xd, s, x)
	q8q, q8d := make([]int8, len(x)), make([]float32, len(xd))
	QuantizeQ8(q8q, q8d, x)
	if !slices.Equal(xq, q8q) || !slices.Equal(xd, q8d) {
		t.Fatal("quantizeQ8_1's q or d differ from QuantizeQ8's")
	}
	for b := range s {
		var sum int32
		for _, v := range xq[b*Q8BlockSize : (b+1)*Q8BlockSize] {
			sum += int32(v)
		}
		// ggml: s = float16(d·Σq) with d = max/127 in float32, not its
		// float16 value.
		amax, _ := q8Scale(x[b*Q8BlockSize : (b+1)*Q8BlockSize])
		if want := float32(f16Ref(gguf.Float32ToFloat16(amax / 127 * float32(sum)))); s[b] != want {
			t.Errorf("block %d: s = %v, want %v (Σq = %d)", b, s[b], want, sum)
		}
	}
	// By hand: max 127 (d = 1) then q 127, -64 (-63.5 to even): s = 63;
	// max 1 (d = 1/127) with q = -127: s = float16(-127·(1/127)) = -1.
	x = make([]float32, 2*Q8BlockSize)
	x[0], x[1], x[Q8BlockSize] = 127, -63.5, -1
	quantizeQ8_1(xq, xd, s, x)
	if s[0] != 63 || s[1] != -1 {
		t.Errorf("s = %v, want [63 -1]", s[:2])
	}
}

// q8TestBlocks lists the row lengths, in blocks, around every unroll boundary.
var q8TestBlocks = []int{1, 2, 3, 4, 5, 7, 8, 9, 24, 48}

// checkDotQ8 runs f against the float64 definition and the generic loop, on rows
// starting at byte offsets 0, 1 and 3 of their buffer.
func checkDotQ8(t *testing.T, name string, f dotQ8Func) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, nb := range q8TestBlocks {
		for _, offset := range []int{0, 1, 3} {
			w := randomQ8Row(r, nb, offset)
			x := randomSlice(r, nb*Q8BlockSize+offset)[offset:]
			xq := make([]int8, len(x)+offset)[offset:]
			xs := make([]float32, nb+1)[1:]
			QuantizeQ8(xq, xs, x)
			got, generic := float64(f(w, xq, xs)), float64(dotQ8Generic(w, xq, xs))
			want, sumAbs := q8Ref(w, xq, xs)
			// Each block's int32 sum is exact; its float32 scaling rounds ~2 eps
			// and the float32 sums, in a different order per implementation,
			// grow like sqrt(nb)·eps·Σ|terms|. 1e-6 is ~17 eps.
			tol := 1e-6 * math.Sqrt(float64(nb)+1) * sumAbs
			if math.Abs(got-want) > tol || math.Abs(got-generic) > tol {
				t.Errorf("%s nb=%d offset=%d: got %v, exact %v, generic %v", name, nb, offset, got, want, generic)
			}
		}
	}
	if got := f(nil, nil, nil); got != 0 {
		t.Errorf("%s of an empty row = %v", name, got)
	}
}

// saturatedQ8 returns nb blocks of d = 1 and q = -128 starting at an odd
// address, and activation scales of 1: against x = ±127 these are the largest
// VPMADDUBSW pair sums (±2·128·127 = ±32512), and with unit scales every
// partial sum is an integer below 2^24, so results must be exact.
func saturatedQ8(nb, activationBlocks int) (w []byte, xs []float32) {
	w = make([]byte, nb*Q8BlockBytes+1)[1:]
	for b := 0; b < nb; b++ {
		w[b*Q8BlockBytes+1] = 0x3c // float16 1.0 = 0x3c00
		for i := 2; i < Q8BlockBytes; i++ {
			w[b*Q8BlockBytes+i] = 0x80 // -128
		}
	}
	xs = make([]float32, activationBlocks)
	for b := range xs {
		xs[b] = 1
	}
	return w, xs
}

// forSaturationPatterns fills xq with ±127 in three patterns and calls check
// with each one's exact dot product against a row of q = -128.
func forSaturationPatterns(xq []int8, check func(pattern string, want float64)) {
	for _, pattern := range []string{"all -127", "all +127", "alternating"} {
		want := 0.0
		for i := range xq {
			switch {
			case pattern == "all -127" || pattern == "alternating" && i%2 == 1:
				xq[i] = -127
			default:
				xq[i] = 127
			}
			want += -128 * float64(xq[i])
		}
		check(pattern, want)
	}
}

// checkDotQ8Saturation puts w = -128 against x = ±127 (see saturatedQ8).
func checkDotQ8Saturation(t *testing.T, name string, f dotQ8Func) {
	const nb = 9
	w, xs := saturatedQ8(nb, nb)
	xq := make([]int8, nb*Q8BlockSize)
	forSaturationPatterns(xq, func(pattern string, want float64) {
		if got := f(w, xq, xs); float64(got) != want {
			t.Errorf("%s, w = -128, x %s: got %v, want %v", name, pattern, got, want)
		}
	})
}

func TestDotQ8(t *testing.T) {
	checkDotQ8(t, "generic", dotQ8Generic)
	checkDotQ8Saturation(t, "generic", dotQ8Generic)
	atEachKernelLevel(t, func(t *testing.T) {
		checkDotQ8(t, "DotQ8", DotQ8)
		checkDotQ8Saturation(t, "DotQ8", DotQ8)
	})
}

// f16TestLengths covers every tail of the 8-, 16-, 32- and 64-wide loops.
var f16TestLengths = func() []int {
	var ns []int
	for n := range 140 {
		ns = append(ns, n)
	}
	return append(ns, 255, 256, 257, 768, 1000, 1536, 4099)
}()

// checkDotF16 runs f against the float64 definition and the generic loop, with
// offsets that misalign both slices (2-byte alignment for w, as in the file).
func checkDotF16(t *testing.T, name string, f dotF16Func) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range f16TestLengths {
		for _, offset := range []int{0, 1, 3} {
			w := make([]uint16, n+offset)[offset:]
			for i := range w {
				w[i] = randomF16(r, 0, 30) // subnormals to 65504
			}
			x := randomSlice(r, n+offset)[offset:]
			var want, sumAbs float64
			for i := range w {
				want += f16Ref(w[i]) * float64(x[i])
				sumAbs += math.Abs(f16Ref(w[i]) * float64(x[i]))
			}
			got, generic := float64(f(w, x)), float64(dotF16Generic(w, x))
			// Float32 products summed in different orders: error ~ sqrt(n)·eps·Σ|terms|.
			tol := 1e-6 * math.Sqrt(float64(n)+1) * sumAbs
			if math.Abs(got-want) > tol || math.Abs(got-generic) > tol {
				t.Errorf("%s n=%d offset=%d: got %v, exact %v, generic %v", name, n, offset, got, want, generic)
			}
		}
	}
}

func TestDotF16(t *testing.T) {
	checkDotF16(t, "generic", dotF16Generic)
	atEachKernelLevel(t, func(t *testing.T) { checkDotF16(t, "DotF16", DotF16) })
}

// checkDequantizeQ8 wants exact values: a float16 scale (11 significant bits)
// times an int8 fits float32's 24 bits, so d*q is exact in every implementation.
func checkDequantizeQ8(t *testing.T, name string, f func(dst []float32, w []byte)) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, nb := range append([]int{0}, q8TestBlocks...) {
		for _, offset := range []int{0, 1, 3} {
			w := randomQ8Row(r, nb, offset)
			buf := make([]float32, nb*Q8BlockSize+offset+1)
			dst := buf[offset : offset+nb*Q8BlockSize]
			buf[len(buf)-1] = 42
			f(dst, w)
			for i, got := range dst {
				blk := w[i/Q8BlockSize*Q8BlockBytes:]
				want := f16Ref(uint16(blk[0])|uint16(blk[1])<<8) * float64(int8(blk[2+i%Q8BlockSize]))
				if float64(got) != want {
					t.Fatalf("%s nb=%d offset=%d: dst[%d] = %v, want %v", name, nb, offset, i, got, want)
				}
			}
			if buf[len(buf)-1] != 42 {
				t.Fatalf("%s nb=%d offset=%d wrote past the end of dst", name, nb, offset)
			}
		}
	}
}

// checkDequantizeF16 wants every value exact, NaN for NaN, over all 65536 bit
// patterns laid out at every misalignment.
func checkDequantizeF16(t *testing.T, name string, f func(dst []float32, w []uint16)) {
	for _, offset := range []int{0, 1, 3} {
		for _, n := range []int{1 << 16, 1<<16 - 5} {
			w := make([]uint16, n+offset)[offset:]
			for i := range w {
				w[i] = uint16(i * 40503) // a permutation of the bit patterns
			}
			buf := make([]float32, n+offset+1)
			dst := buf[offset : offset+n]
			buf[len(buf)-1] = 42
			f(dst, w)
			for i, got := range dst {
				want := f16Ref(w[i])
				if math.IsNaN(want) != math.IsNaN(float64(got)) || !math.IsNaN(want) && float64(got) != want {
					t.Fatalf("%s n=%d offset=%d: %#04x -> %v, want %v", name, n, offset, w[i], got, want)
				}
			}
			if buf[len(buf)-1] != 42 {
				t.Fatalf("%s n=%d offset=%d wrote past the end of dst", name, n, offset)
			}
		}
	}
}

func TestDequantize(t *testing.T) {
	checkDequantizeQ8(t, "generic", dequantizeQ8Generic)
	checkDequantizeF16(t, "generic", dequantizeF16Generic)
	atEachKernelLevel(t, func(t *testing.T) {
		checkDequantizeQ8(t, "DequantizeQ8Row", DequantizeQ8Row)
		checkDequantizeF16(t, "DequantizeF16Row", DequantizeF16Row)
	})
}

func TestQ8LengthPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("DotQ8 of a 35-byte row did not panic")
		}
	}()
	DotQ8(make([]byte, 35), make([]int8, 64), make([]float32, 2))
}

// benchShapes are rows of the seed model in cache (768, 1536 values) and the
// 32768x768 output head walked row by row, far out of L1/L2.
var benchShapes = [][2]int{{1, 768}, {1, 1536}, {32768, 768}}

func benchName(shape [2]int) string {
	if shape[0] == 1 {
		return fmt.Sprint(shape[1])
	}
	return fmt.Sprintf("%dx%d", shape[0], shape[1])
}

// BenchmarkDotQ8 reports MB/s of Q8_0 weight bytes, 34 per 32 values.
func BenchmarkDotQ8(b *testing.B) {
	for _, impl := range dotQ8Impls {
		for _, shape := range benchShapes {
			rows, cols := shape[0], shape[1]
			b.Run(impl.name+"/"+benchName(shape), func(b *testing.B) {
				r := rand.New(rand.NewPCG(21, 22))
				rowBytes := cols / Q8BlockSize * Q8BlockBytes
				w := randomQ8Row(r, rows*cols/Q8BlockSize, 0)
				xq, xs := make([]int8, cols), make([]float32, cols/Q8BlockSize)
				QuantizeQ8(xq, xs, randomSlice(r, cols))
				out := make([]float32, rows)
				b.SetBytes(int64(rows * rowBytes))
				b.ResetTimer() // set-up is not timed
				for range b.N {
					for i := range out {
						out[i] = impl.f(w[i*rowBytes:(i+1)*rowBytes], xq, xs)
					}
				}
			})
		}
	}
}

// BenchmarkDotF16 reports MB/s of float16 weight bytes.
func BenchmarkDotF16(b *testing.B) {
	for _, impl := range dotF16Impls {
		for _, shape := range benchShapes {
			rows, cols := shape[0], shape[1]
			b.Run(impl.name+"/"+benchName(shape), func(b *testing.B) {
				r := rand.New(rand.NewPCG(23, 24))
				w := make([]uint16, rows*cols)
				for i := range w {
					w[i] = randomF16(r, 10, 18)
				}
				x, out := randomSlice(r, cols), make([]float32, rows)
				b.SetBytes(int64(2 * rows * cols))
				b.ResetTimer() // set-up is not timed
				for range b.N {
					for i := range out {
						out[i] = impl.f(w[i*cols:(i+1)*cols], x)
					}
				}
			})
		}
	}
}

func BenchmarkQuantizeQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(25, 26))
	x := randomSlice(r, 768)
	xq, xs := make([]int8, 768), make([]float32, 768/Q8BlockSize)
	b.SetBytes(4 * 768)
	b.ResetTimer() // set-up is not timed
	for range b.N {
		QuantizeQ8(xq, xs, x)
	}
}
