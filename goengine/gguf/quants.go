package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The block decoders below are transcriptions of ggml's reference
// dequantize_row_* (ggml/src/ggml-quants.c) and follow its float32
// operations in its order, so that a value decodes to the same bits as in
// ggml. Every product that is later added or subtracted is converted to
// float32 where it is computed, in `float32(a*b) + c` and in a min such as
// `m1 := float32(dmin*m)`: the Go spec lets a compiler fuse a*b + c into one
// FMA even across statements (arm64 and riscv64 do), and an explicit
// conversion is what forbids it, so the result is the same on every GOARCH.
// (With float16 scales and small integer quants these products are exact
// today, so a fused result would agree anyway; the conversions make that a
// property of the code rather than of the operand widths.) Each block's
// layout is in spec/format.md §5.3.

// qkK is ggml's QK_K, the number of values in one K-quant super-block.
const qkK = 256

// DequantizeBlocks decodes whole blocks of type t from src into dst (F32,
// F16, BF16 or any block quantization; not I32). len(dst) must be a multiple
// of t.BlockValues() and len(src) exactly len(dst)/t.BlockValues() blocks of
// t.BlockBytes(); anything else is a programming error and panics. It does
// not allocate: the engine calls it per row in its hot loops.
func DequantizeBlocks(t TensorType, dst []float32, src []byte) {
	values, bytes := t.BlockValues(), t.BlockBytes()
	if values == 0 || t == I32 {
		panic(fmt.Sprintf("gguf: DequantizeBlocks: cannot convert %s values to float32", t))
	}
	if len(dst)%values != 0 || len(src) != len(dst)/values*bytes {
		panic(fmt.Sprintf("gguf: DequantizeBlocks: %d %s values need %d-byte blocks of %d values; %d bytes given",
			len(dst), t, bytes, values, len(src)))
	}
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = Float16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case Q8_0:
		for b := range len(dst) / Q8_0BlockValues {
			DequantizeQ8_0Block(dst[b*Q8_0BlockValues:(b+1)*Q8_0BlockValues], src[b*Q8_0BlockBytes:(b+1)*Q8_0BlockBytes])
		}
	case Q4_0:
		dequantizeQ4_0(dst, src)
	case Q4_1:
		dequantizeQ4_1(dst, src)
	case Q5_0:
		dequantizeQ5_0(dst, src)
	case Q5_1:
		dequantizeQ5_1(dst, src)
	case Q2_K:
		dequantizeQ2_K(dst, src)
	case Q3_K:
		dequantizeQ3_K(dst, src)
	case Q4_K:
		dequantizeQ4_K(dst, src)
	case Q5_K:
		dequantizeQ5_K(dst, src)
	case Q6_K:
		dequantizeQ6_K(dst, src)
	}
}

// BFloat16ToFloat32 widens a bfloat16 value, given by its bits, to float32.
// bfloat16 is the top half of a float32, so this is exact for every value
// (NaN payloads and subnormals included), as ggml's GGML_BF16_TO_FP32.
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// half reads the little-endian float16 at b[0:2] as float32.
func half(b []byte) float32 { return Float16ToFloat32(binary.LittleEndian.Uint16(b)) }

// Q4_0: d, then 16 bytes of nibbles; value = (q - 8)·d. The low nibbles of
// bytes 0..15 are values 0..15, the high nibbles values 16..31.
func dequantizeQ4_0(dst []float32, src []byte) {
	for i := range len(dst) / 32 {
		b, y := (*[18]byte)(src[18*i:]), (*[32]float32)(dst[32*i:])
		d, qs := half(b[0:]), b[2:18]
		for j := range 16 {
			y[j] = float32(int(qs[j]&0x0f)-8) * d
			y[j+16] = float32(int(qs[j]>>4)-8) * d
		}
	}
}

// Q4_1: d, m, then nibbles as Q4_0; value = q·d + m.
func dequantizeQ4_1(dst []float32, src []byte) {
	for i := range len(dst) / 32 {
		b, y := (*[20]byte)(src[20*i:]), (*[32]float32)(dst[32*i:])
		d, m, qs := half(b[0:]), half(b[2:]), b[4:20]
		for j := range 16 {
			y[j] = float32(float32(qs[j]&0x0f)*d) + m
			y[j+16] = float32(float32(qs[j]>>4)*d) + m
		}
	}
}

// Q5_0: d, a uint32 qh whose bit j is the fifth bit of value j, then nibbles
// as Q4_0; value = (q - 16)·d.
func dequantizeQ5_0(dst []float32, src []byte) {
	for i := range len(dst) / 32 {
		b, y := (*[22]byte)(src[22*i:]), (*[32]float32)(dst[32*i:])
		d, qh, qs := half(b[0:]), binary.LittleEndian.Uint32(b[2:]), b[6:22]
		for j := range 16 {
			x0 := int(qs[j]&0x0f|byte(qh>>j&1)<<4) - 16
			x1 := int(qs[j]>>4|byte(qh>>(j+16)&1)<<4) - 16
			y[j] = float32(x0) * d
			y[j+16] = float32(x1) * d
		}
	}
}

// Q5_1: d, m, qh, then nibbles as Q5_0; value = q·d + m.
func dequantizeQ5_1(dst []float32, src []byte) {
	for i := range len(dst) / 32 {
		b, y := (*[24]byte)(src[24*i:]), (*[32]float32)(dst[32*i:])
		d, m, qh, qs := half(b[0:]), half(b[2:]), binary.LittleEndian.Uint32(b[4:]), b[8:24]
		for j := range 16 {
			x0 := qs[j]&0x0f | byte(qh>>j&1)<<4
			x1 := qs[j]>>4 | byte(qh>>(j+16)&1)<<4
			y[j] = float32(float32(x0)*d) + m
			y[j+16] = float32(float32(x1)*d) + m
		}
	}
}

// Q2_K: 16 scale bytes (scale in the low nibble, min in the high), 64 bytes
// of 2-bit quants, d, dmin. The values come in 16 groups of 16, group
// g = 8·h + 2·j + k (h, k in 0..1, j in 0..3) with scale byte g and its quants
// in qs[32·h + 16·k ..][:16] at bit 2·j: each half of the block reads its 32
// quant bytes four times, at shifts 0, 2, 4, 6.
// value = (d·scale)·q - dmin·min.
func dequantizeQ2_K(dst []float32, src []byte) {
	for i := range len(dst) / qkK {
		b, y := (*[84]byte)(src[84*i:]), (*[qkK]float32)(dst[qkK*i:])
		scales, qs, d, dmin := b[0:16], b[16:80], half(b[80:]), half(b[82:])
		for g := range 16 {
			h, j, k := g/8, g%8/2, g%2
			q, shift := qs[32*h+16*k:][:16], 2*j
			dl, ml := d*float32(scales[g]&0x0f), float32(dmin*float32(scales[g]>>4))
			for l := range 16 {
				y[16*g+l] = float32(dl*float32(q[l]>>shift&3)) - ml
			}
		}
	}
}

// Q3KScales unpacks Q3_K's sixteen 6-bit scales from its 12 scale bytes:
// scale j has its low 4 bits in byte j%8 (the low nibble for j < 8, the high
// one for j ≥ 8) and its high 2 bits in byte 8 + j%4 at bit 2·(j/4); the
// stored value is offset by 32. The one unpacking of them: package tensor's
// Q3_K products call it too.
func Q3KScales(s []byte) (scales [16]int32) {
	for j := range 16 {
		low := s[j%8] >> (4 * (j / 8)) & 0x0f
		high := s[8+j%4] >> (2 * (j / 4)) & 3
		scales[j] = int32(low|high<<4) - 32
	}
	return scales
}

// Q3_K: 32 bytes hmask (the third bit of each quant), 64 bytes of 2-bit quants
// in Q2_K's groups, 12 bytes of 6-bit scales, d. Group g = 8·h + 2·j + k takes
// its high bits from hmask[16·k ..][:16] at bit 4·h + j; a clear bit subtracts
// 4. value = (d·scale)·q with q in -4..3.
func dequantizeQ3_K(dst []float32, src []byte) {
	for i := range len(dst) / qkK {
		b, y := (*[110]byte)(src[110*i:]), (*[qkK]float32)(dst[qkK*i:])
		hmask, qs, d := b[0:32], b[32:96], half(b[108:])
		scales := Q3KScales(b[96:108])
		for g := range 16 {
			h, j, k := g/8, g%8/2, g%2
			q, hm, shift, bit := qs[32*h+16*k:][:16], hmask[16*k:][:16], 2*j, byte(1)<<(4*h+j)
			dl := d * float32(scales[g])
			for l := range 16 {
				x := int(q[l] >> shift & 3)
				if hm[l]&bit == 0 {
					x -= 4
				}
				y[16*g+l] = dl * float32(x)
			}
		}
	}
}

// ScaleMinK4 is ggml's get_scale_min_k4: the 6-bit scale and min of sub-block
// j (0..7) of a Q4_K or Q5_K block, from its 12 scale bytes (package tensor's
// Q4_K and Q5_K products call it too). Sub-blocks 0..3
// have theirs in the low 6 bits of bytes j and j+4; sub-blocks 4..7 take the
// low 4 bits from byte j+4 (scale in the low nibble, min in the high) and the
// high 2 bits from the top bits of bytes j-4 (scale) and j (min).
func ScaleMinK4(j int, q []byte) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// Q4_K: d, dmin, 12 bytes of scales and mins (ScaleMinK4), 128 bytes of
// nibbles. Each 64 values read 32 bytes: low nibbles first, then high; each
// 32 values are one sub-block. value = (d·scale)·q - dmin·min.
func dequantizeQ4_K(dst []float32, src []byte) {
	for i := range len(dst) / qkK {
		b, y := (*[144]byte)(src[144*i:]), (*[qkK]float32)(dst[qkK*i:])
		d, dmin, scales, qs := half(b[0:]), half(b[2:]), b[4:16], b[16:144]
		for c := range 4 {
			q := qs[32*c : 32*c+32]
			sc, m := ScaleMinK4(2*c, scales)
			d1, m1 := d*float32(sc), float32(dmin*float32(m))
			sc, m = ScaleMinK4(2*c+1, scales)
			d2, m2 := d*float32(sc), float32(dmin*float32(m))
			for l := range 32 {
				y[64*c+l] = float32(d1*float32(q[l]&0x0f)) - m1
				y[64*c+32+l] = float32(d2*float32(q[l]>>4)) - m2
			}
		}
	}
}

// Q5_K: d, dmin, 12 bytes of scales and mins, 32 bytes qh, 128 bytes of
// nibbles laid out as Q4_K's. Value e's fifth bit is bit e/32 of qh[e%32].
// value = (d·scale)·q - dmin·min.
func dequantizeQ5_K(dst []float32, src []byte) {
	for i := range len(dst) / qkK {
		b, y := (*[176]byte)(src[176*i:]), (*[qkK]float32)(dst[qkK*i:])
		d, dmin, scales := half(b[0:]), half(b[2:]), b[4:16]
		qh, qs := b[16:48], b[48:176]
		for c := range 4 {
			ql := qs[32*c : 32*c+32]
			sc, m := ScaleMinK4(2*c, scales)
			d1, m1 := d*float32(sc), float32(dmin*float32(m))
			sc, m = ScaleMinK4(2*c+1, scales)
			d2, m2 := d*float32(sc), float32(dmin*float32(m))
			u1, u2 := byte(1)<<(2*c), byte(2)<<(2*c)
			for l := range 32 {
				x1, x2 := ql[l]&0x0f, ql[l]>>4
				if qh[l]&u1 != 0 {
					x1 += 16
				}
				if qh[l]&u2 != 0 {
					x2 += 16
				}
				y[64*c+l] = float32(d1*float32(x1)) - m1
				y[64*c+32+l] = float32(d2*float32(x2)) - m2
			}
		}
	}
}

// Q6_K: 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8
// scales, d. Each half h of the block reads 64 ql bytes, 32 qh bytes and 8
// scales: value 128·h + 32·g + l (g = 0..3, l = 0..31) has its low bits in
// ql[64·h + 32·(g%2) + l] (low nibble for g < 2, high for g ≥ 2) and its high
// bits at bit 2·g of qh[32·h + l]; every 16 values take the next scale.
// value = (d·scale)·(q - 32).
func dequantizeQ6_K(dst []float32, src []byte) {
	for i := range len(dst) / qkK {
		b, y := (*[210]byte)(src[210*i:]), (*[qkK]float32)(dst[qkK*i:])
		d := half(b[208:])
		for h := range 2 {
			ql, qh, sc := b[64*h:][:64], b[128+32*h:][:32], b[192+8*h:][:8]
			out := y[128*h:][:128]
			for l := range 32 {
				is := l / 16
				q1 := int(ql[l]&0x0f|(qh[l]>>0&3)<<4) - 32
				q2 := int(ql[l+32]&0x0f|(qh[l]>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				out[l] = d * float32(int8(sc[is])) * float32(q1)
				out[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				out[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				out[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
		}
	}
}

// scaleOffsets lists, for each block type, the byte offsets in a block of
// its float16 scale fields (d, and m or dmin where the type has one).
var scaleOffsets = map[TensorType][]int{
	Q4_0: {0}, Q4_1: {0, 2}, Q5_0: {0}, Q5_1: {0, 2}, Q8_0: {0},
	Q2_K: {80, 82}, Q3_K: {108}, Q4_K: {0, 2}, Q5_K: {0, 2}, Q6_K: {208},
}

// FirstNonFiniteScale returns the index of the first block of src (whole
// blocks of type t) whose float16 scale d, or m or dmin where the type has
// one, is NaN or ±Inf; or -1 if there is none. F32, F16, BF16 and I32 have no
// scales and always give -1. A src that is not whole blocks panics.
//
// A non-finite scale makes every value of its block NaN or ±Inf (a zero quant
// gives 0·Inf = NaN), so a loader refuses such a file rather than run it
// (spec/format.md §5.3).
func FirstNonFiniteScale(t TensorType, src []byte) int {
	offsets, ok := scaleOffsets[t]
	if !ok {
		return -1
	}
	size := t.BlockBytes()
	if len(src)%size != 0 {
		panic(fmt.Sprintf("gguf: FirstNonFiniteScale: %d bytes are not whole %d-byte %s blocks", len(src), size, t))
	}
	for b := 0; b < len(src); b += size {
		for _, off := range offsets {
			if binary.LittleEndian.Uint16(src[b+off:])&0x7c00 == 0x7c00 { // exponent all ones
				return b / size
			}
		}
	}
	return -1
}
