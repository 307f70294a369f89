package tensor

import (
	"math"

	"gollm/goengine/gguf"
)

// The decode products of Blocks matrices (Q4_0 … Q6_K, BF16), computed as
// llama.cpp computes them (spec/model.md §11): the activation x is quantized
// once per product, into the 8-bit format that the weight type's dot product
// pairs with, and each block's product is then an exact integer sum of
// weight quants times activation quants, scaled by the two block scales.
//
//	Q4_0, Q5_0            x as Q8_0: blocks of 32, QuantizeQ8 (as Q8_0 weights' products)
//	Q4_1, Q5_1            x as Q8_1: Q8_0's blocks and each block's s ≈ d·Σq, for the min term
//	Q2_K … Q6_K           x as Q8_K: blocks of 256, one float32 scale, int16 sums of 16
//	BF16                  x as it is, float32, each weight widened exactly
//
// The generic kernels (blockdots.go) write each product out as that integer
// math; the assembly ones (blocks_amd64.s) compute the same sums with vector
// instructions, as ggml's arch/x86/quants.c does.

// blockAct is one token's activation in every format the products of a
// MatMuls call need, quantized once for all of them (Pool.quantize). A format
// no product needs is left empty.
type blockAct struct {
	x  []float32 // (cols) the activation itself: BF16
	q8 []int8    // (cols) QuantizeQ8's values: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
	d8 []float32 // (cols/32) their scales, float16 values
	s8 []float32 // (cols/32) Q8_1's s, ≈ d8[b]·Σ q8 over block b (quantizeQ8_1): Q4_1, Q5_1
	qk []int8    // (cols) Q8_K values: the K-quants
	dk []float32 // (cols/256) their scales
	bk []int16   // (cols/16) Σ qk over each 16 values: the K-quants' min and offset terms
}

// q8KBlock is the number of values of a Q8_K block, ggml's QK_K.
const q8KBlock = 256

// activationFormat is which of blockAct's formats a product with W needs.
type activationFormat uint8

const (
	needQ8  activationFormat = 1 << iota // q8, d8
	needQ81                              // s8 as well
	needQ8K                              // qk, dk, bk
)

// activationFormatOf is the activation format of a decode product with w.
func activationFormatOf(w *Matrix) activationFormat {
	switch {
	case w.Type == Q8_0:
		return needQ8
	case w.Type != Blocks:
		return 0
	}
	switch w.Quant {
	case gguf.Q4_0, gguf.Q5_0:
		return needQ8
	case gguf.Q4_1, gguf.Q5_1:
		return needQ8 | needQ81
	case gguf.Q2_K, gguf.Q3_K, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K:
		return needQ8K
	}
	return 0 // BF16: float32 activations
}

// quantizeQ8K quantizes x per block of 256 as ggml's quantize_row_q8_K_ref:
// the value of largest magnitude (the first, on ties) is max, the scale is
// iscale = -127/max, q = min(127, round-half-to-even(iscale·x)) and the block's
// d = 1/iscale (negative when max is positive), so that x ≈ d·q; bsums[j] is the
// sum of the 16 quants j. A block of zeros has d = 0 and q = 0. len(x) must be
// a multiple of 256; q holds len(x) values, d len(x)/256, bsums len(x)/16.
func quantizeQ8K(q []int8, d []float32, bsums []int16, x []float32) {
	if len(x)%q8KBlock != 0 {
		panic("tensor: quantizeQ8K length is not a multiple of 256")
	}
	nb := len(x) / q8KBlock
	q, d, bsums = q[:len(x)], d[:nb], bsums[:len(x)/16]
	for b := range d {
		blk, qb := x[b*q8KBlock:(b+1)*q8KBlock], q[b*q8KBlock:(b+1)*q8KBlock]
		var amax, vmax float32
		for _, v := range blk {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, vmax = a, v
			}
		}
		if amax == 0 {
			d[b] = 0
			clear(qb)
		} else {
			iscale := -127 / vmax
			for i, v := range blk {
				// The product rounded to float32 first, as in C; ggml's
				// nearest_int rounds half to even (it adds 1.5·2²³).
				qb[i] = int8(min(127, int32(math.RoundToEven(float64(iscale*v)))))
			}
			d[b] = 1 / iscale
		}
		for j := range q8KBlock / 16 {
			var sum int16
			for _, v := range qb[16*j : 16*j+16] {
				sum += int16(v)
			}
			bsums[b*q8KBlock/16+j] = sum
		}
	}
}

// blockActs is the activations of the up to smallBatch tokens of one MatMuls
// call in the formats its products need, in buffers the Pool reuses for every
// call: a decode step allocates nothing once they have grown to the widest
// input.
type blockActs struct {
	cols    int
	formats activationFormat
	x       []float32
	q8      []int8
	d8, s8  []float32
	qk      []int8
	dk      []float32
	bk      []int16
}

// quantize puts the T rows of x (T, cols) in formats.
func (b *blockActs) quantize(x []float32, T, cols int, formats activationFormat) {
	b.x, b.cols, b.formats = x, cols, formats
	if formats&needQ8 != 0 {
		// Blocks never straddle two tokens. A product with Q4_1 or Q5_1 needs
		// Q8_1 (its s as well); the others read the same q and d.
		b.q8, b.d8 = grow(b.q8, T*cols), grow(b.d8, T*cols/Q8BlockSize)
		if formats&needQ81 != 0 {
			b.s8 = grow(b.s8, T*cols/Q8BlockSize)
			quantizeQ8_1(b.q8, b.d8, b.s8, x[:T*cols])
		} else {
			QuantizeQ8(b.q8, b.d8, x[:T*cols])
		}
	}
	if formats&needQ8K != 0 {
		b.qk, b.dk, b.bk = grow(b.qk, T*cols), grow(b.dk, T*cols/q8KBlock), grow(b.bk, T*cols/16)
		quantizeQ8K(b.qk, b.dk, b.bk, x[:T*cols])
	}
}

// token is token tok's activation, views of the buffers.
func (b *blockActs) token(tok int) blockAct {
	c := b.cols
	a := blockAct{x: b.x[tok*c : (tok+1)*c]}
	if b.formats&needQ8 != 0 {
		a.q8, a.d8 = b.q8[tok*c:(tok+1)*c], b.d8[tok*c/Q8BlockSize:(tok+1)*c/Q8BlockSize]
	}
	if b.formats&needQ81 != 0 {
		a.s8 = b.s8[tok*c/Q8BlockSize : (tok+1)*c/Q8BlockSize]
	}
	if b.formats&needQ8K != 0 {
		a.qk, a.dk, a.bk = b.qk[tok*c:(tok+1)*c], b.dk[tok*c/q8KBlock:(tok+1)*c/q8KBlock], b.bk[tok*c/16:(tok+1)*c/16]
	}
	return a
}
