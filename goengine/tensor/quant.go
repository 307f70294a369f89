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

// QuantizeQ8 quantizes x per block of 32 as llama.cpp's quantize_row_q8_0 does:
// d = max|x|/127, q = round-half-away-from-zero(x/d), so q stays in [-127, 127].
// The scale d goes to xs[b] as a float32 (llama.cpp rounds it to float16).
// len(x) must be a multiple of 32, len(xq) >= len(x), len(xs) >= len(x)/32.
func QuantizeQ8(xq []int8, xs []float32, x []float32) {
	if len(x)%Q8BlockSize != 0 {
		panic("tensor: QuantizeQ8 length is not a multiple of 32")
	}
	nb := len(x) / Q8BlockSize
	xq, xs = xq[:len(x)], xs[:nb]
	for b := range xs {
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
		d := math.Float32frombits(max(m0, m1, m2, m3)) / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		xs[b] = d
		for i, v := range blk {
			// x*id is rounded to float32 first, as in C; adding ±0.5 in float64 is
			// exact for |v| <= 127.5, and the conversion truncates toward zero.
			// Copysign instead of a branch: the signs of x are random.
			v := float64(v * id)
			q[i] = int8(int32(v + math.Copysign(0.5, v)))
		}
	}
}

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
