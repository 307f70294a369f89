package tensor

import (
	"math"

	"gollm/goengine/gguf"
)

// Quantized weights as GGUF stores them, read in place from the mapped file
// (spec/format.md §5): a Q8_0 block is a little-endian float16 scale d and 32
// int8 values q, value i is float32(d)*q[i]; F16 weights are little-endian
// IEEE half floats. Package gguf holds the one decoder of each
// (gguf.Float16ToFloat32, gguf.DequantizeQ8_0Block): the generic kernels call
// it, and every vector kernel is tested against the generic ones.
const (
	Q8BlockSize  = gguf.Q8_0BlockValues
	Q8BlockBytes = gguf.Q8_0BlockBytes
)

// f16ToF32 is the F16 decoder, gguf.Float16ToFloat32 (it inlines).
func f16ToF32(h uint16) float32 { return gguf.Float16ToFloat32(h) }

// QuantizeQ8 quantizes x per block of 32 exactly as llama.cpp's x86 (AVX2)
// quantize_row_q8_0 does, so that a decode product makes llama.cpp's rounding
// decisions: with max = max|x| over the block, q = round-half-to-even(x·id),
// id = 127/max and the product rounded to float32 first (_mm256_round_ps), so
// q stays in [-127, 127]; the block's scale d = max/127 is stored as float16
// (GGML_CPU_FP32_TO_FP16, to nearest even) and xs[b] is that float16's value,
// the d the products multiply. A block of zeros has q = 0 and d = 0; a block
// too small for a float16 d (max/127 at most 2⁻²⁵, half float16's smallest
// step) keeps its q and has d = 0, as in ggml. len(x) must be a multiple of
// 32, len(xq) >= len(x), len(xs) >= len(x)/32.
func QuantizeQ8(xq []int8, xs []float32, x []float32) {
	quantizeQ8Blocks(xq, xs, nil, x)
}

// quantizeQ8_1 quantizes x per block of 32 as llama.cpp's x86 (AVX2)
// quantize_row_q8_1: QuantizeQ8's q and d, and Q8_1's s[b] = d·Σ q over the
// block, computed in float32 from the d before its rounding (max/127) and
// then rounded to float16 itself, as ggml stores it. len(s) >= len(x)/32.
func quantizeQ8_1(xq []int8, xd, s []float32, x []float32) {
	quantizeQ8Blocks(xq, xd, s, x)
}

// quantizeQ8Blocks is QuantizeQ8, and quantizeQ8_1 where s is not nil.
func quantizeQ8Blocks(xq []int8, xd, s []float32, x []float32) {
	if len(x)%Q8BlockSize != 0 {
		panic("tensor: QuantizeQ8 length is not a multiple of 32")
	}
	nb := len(x) / Q8BlockSize
	xq, xd = xq[:len(x)], xd[:nb]
	if s != nil {
		s = s[:nb]
	}
	for b := range xd {
		blk := x[b*Q8BlockSize : (b+1)*Q8BlockSize]
		q := xq[b*Q8BlockSize : (b+1)*Q8BlockSize]
		// |x| compared as bits: for non-negative floats the integer order is the
		// float order, and the integer max compiles to a conditional move; four
		// chains so the moves overlap.
		var m0, m1, m2, m3 uint32
		for i := 0; i < len(blk); i += 4 {
			b4 := blk[i : i+4 : i+4]
			m0 = max(m0, math.Float32bits(b4[0])&^(1<<31))
			m1 = max(m1, math.Float32bits(b4[1])&^(1<<31))
			m2 = max(m2, math.Float32bits(b4[2])&^(1<<31))
			m3 = max(m3, math.Float32bits(b4[3])&^(1<<31))
		}
		amax := math.Float32frombits(max(m0, m1, m2, m3))
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax // not 1/d: ggml's x86 code, whose q we reproduce
		}
		var sum int32
		for i, v := range blk {
			// Rounding half to even as ggml's nearest_int does: adding 1.5·2²³
			// leaves the nearest integer in the low bits (|v·id| <= 127 + ulp).
			// The explicit float32 conversion keeps the product rounded as in
			// C: Go may otherwise fuse it with the addition.
			qi := int32(math.Float32bits(float32(v*id)+roundMagic)) - roundMagicBits
			q[i] = int8(qi)
			sum += qi
		}
		xd[b] = roundF16(d)
		if s != nil {
			s[b] = roundF16(d * float32(sum))
		}
	}
}

// roundMagic is 1.5·2²³: x + roundMagic, in float32, is roundMagic plus x
// rounded to an integer, half to even, for |x| < 2²², and its bits are then
// roundMagicBits plus that integer.
const (
	roundMagic     = 0x1.8p23
	roundMagicBits = 0x4b400000
)

// roundF16 is f rounded to the nearest float16 (ties to even), as ggml stores
// the scales of its activation blocks.
func roundF16(f float32) float32 { return f16ToF32(gguf.Float32ToFloat16(f)) }

// dotQ8Generic is the portable Q8_0 row dot product: an exact int32 sum per
// block, scaled by both block scales. Every other implementation is tested
// against it.
func dotQ8Generic(w []byte, xq []int8, xs []float32) float32 {
	nb := len(w) / Q8BlockBytes
	xq, xs = xq[:nb*Q8BlockSize], xs[:nb]
	var sum float32
	for b := range xs {
		blk := w[b*Q8BlockBytes : (b+1)*Q8BlockBytes]
		x := xq[b*Q8BlockSize : (b+1)*Q8BlockSize]
		q := blk[2:]
		q = q[:len(x)]
		var s0, s1 int32
		for i := 0; i < len(x); i += 2 {
			s0 += int32(int8(q[i])) * int32(x[i])
			s1 += int32(int8(q[i+1])) * int32(x[i+1])
		}
		d := f16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
		sum += d * xs[b] * float32(s0+s1)
	}
	return sum
}

// dotF16Generic is the portable float16 dot product, four accumulators as in
// dotGeneric.
func dotF16Generic(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	n := len(w) &^ 3
	for i := 0; i < n; i += 4 {
		w4, x4 := w[i:i+4:i+4], x[i:i+4:i+4] // one check for four elements
		s0 += f16ToF32(w4[0]) * x4[0]
		s1 += f16ToF32(w4[1]) * x4[1]
		s2 += f16ToF32(w4[2]) * x4[2]
		s3 += f16ToF32(w4[3]) * x4[3]
	}
	for i := n; i < len(w); i++ {
		s0 += f16ToF32(w[i]) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// dequantizeQ8Generic writes the nb*32 values of a Q8_0 row into dst, a block
// at a time through the Q8_0 decoder.
func dequantizeQ8Generic(dst []float32, w []byte) {
	nb := len(w) / Q8BlockBytes
	for b := 0; b < nb; b++ {
		gguf.DequantizeQ8_0Block(dst[b*Q8BlockSize:(b+1)*Q8BlockSize], w[b*Q8BlockBytes:(b+1)*Q8BlockBytes])
	}
}

// dequantizeF16Generic widens w into dst.
func dequantizeF16Generic(dst []float32, w []uint16) {
	dst = dst[:len(w)]
	for i, h := range w {
		dst[i] = f16ToF32(h)
	}
}

// q8Blocks is the number of Q8_0 blocks in w, which must hold whole blocks.
func q8Blocks(w []byte) int {
	if len(w)%Q8BlockBytes != 0 {
		panic("tensor: Q8_0 row length is not a multiple of 34 bytes")
	}
	return len(w) / Q8BlockBytes
}
