package tensor

import (
	"encoding/binary"

	"gollm/goengine/gguf"
)

// The generic dot products of one row of a Blocks matrix with a quantized
// activation: the definitions, in ggml's integer arithmetic, that every
// assembly kernel is tested against. Block layouts are spec/format.md §5.3
// (and gguf/quants.go, which decodes them); each function names the value
// formula it multiplies out. For a weight w = d_w·q_w (+ a min) and an
// activation value x = d_x·q_x, a block contributes d_w·d_x·Σ q_w·q_x with
// the sum in int32, which no block can overflow (the largest, Q6_K, stays
// below 256·128·32·127 < 2³¹).

// blockDot is a generic row product: w is whole blocks of one type, a the
// activation (its formats start at the row's first value).
type blockDot func(w []byte, a *blockAct) float32

// blockDotGeneric is the generic row product for type t.
func blockDotGeneric(t gguf.TensorType) blockDot {
	switch t {
	case gguf.Q4_0:
		return dotQ4_0Generic
	case gguf.Q4_1:
		return dotQ4_1Generic
	case gguf.Q5_0:
		return dotQ5_0Generic
	case gguf.Q5_1:
		return dotQ5_1Generic
	case gguf.Q2_K:
		return dotQ2_KGeneric
	case gguf.Q3_K:
		return dotQ3_KGeneric
	case gguf.Q4_K:
		return dotQ4_KGeneric
	case gguf.Q5_K:
		return dotQ5_KGeneric
	case gguf.Q6_K:
		return dotQ6_KGeneric
	case gguf.BF16:
		return dotBF16Generic
	}
	panic("tensor: no decode product for " + t.String())
}

// f16At reads the little-endian float16 at b[0:2].
func f16At(b []byte) float32 { return f16ToF32(binary.LittleEndian.Uint16(b)) }

// Q4_0: d, 16 bytes of nibbles (low ones values 0..15, high ones 16..31);
// w = d·(q - 8).
func dotQ4_0Generic(w []byte, a *blockAct) float32 {
	var sum float32
	for b := range len(w) / 18 {
		blk, x := (*[18]byte)(w[18*b:]), (*[32]int8)(a.q8[32*b:])
		var s int32
		for j, v := range blk[2:] {
			s += (int32(v&15)-8)*int32(x[j]) + (int32(v>>4)-8)*int32(x[j+16])
		}
		sum += f16At(blk[0:]) * a.d8[b] * float32(s)
	}
	return sum
}

// Q4_1: d, m, nibbles as Q4_0; w = d·q + m, so the block is
// d·d_x·Σ q·q_x + m·(d_x·Σ q_x), the second factor Q8_1's s.
func dotQ4_1Generic(w []byte, a *blockAct) float32 {
	var sum float32
	for b := range len(w) / 20 {
		blk, x := (*[20]byte)(w[20*b:]), (*[32]int8)(a.q8[32*b:])
		var s int32
		for j, v := range blk[4:] {
			s += int32(v&15)*int32(x[j]) + int32(v>>4)*int32(x[j+16])
		}
		sum += f16At(blk[0:])*a.d8[b]*float32(s) + f16At(blk[2:])*a.s8[b]
	}
	return sum
}

// Q5_0: d, 32 fifth bits qh (bit j of value j), nibbles as Q4_0;
// w = d·(q - 16).
func dotQ5_0Generic(w []byte, a *blockAct) float32 {
	var sum float32
	for b := range len(w) / 22 {
		blk, x := (*[22]byte)(w[22*b:]), (*[32]int8)(a.q8[32*b:])
		qh := binary.LittleEndian.Uint32(blk[2:])
		var s int32
		for j, v := range blk[6:] {
			q0 := int32(v&15|byte(qh>>j&1)<<4) - 16
			q1 := int32(v>>4|byte(qh>>(j+16)&1)<<4) - 16
			s += q0*int32(x[j]) + q1*int32(x[j+16])
		}
		sum += f16At(blk[0:]) * a.d8[b] * float32(s)
	}
	return sum
}

// Q5_1: d, m, qh, nibbles as Q5_0; w = d·q + m, the min term as Q4_1's.
func dotQ5_1Generic(w []byte, a *blockAct) float32 {
	var sum float32
	for b := range len(w) / 24 {
		blk, x := (*[24]byte)(w[24*b:]), (*[32]int8)(a.q8[32*b:])
		qh := binary.LittleEndian.Uint32(blk[4:])
		var s int32
		for j, v := range blk[8:] {
			q0 := int32(v&15 | byte(qh>>j&1)<<4)
			q1 := int32(v>>4 | byte(qh>>(j+16)&1)<<4)
			s += q0*int32(x[j]) + q1*int32(x[j+16])
		}
		sum += f16At(blk[0:])*a.d8[b]*float32(s) + f16At(blk[2:])*a.s8[b]
	}
	return sum
}

// Q2_K: 16 scale bytes (scale low nibble, min high), 64 bytes of 2-bit quants,
// d, dmin; 16 groups of 16 values, group g = 8·h + 2·j + k reading
// qs[32·h + 16·k ..][:16] at bit 2·j (gguf's dequantizeQ2_K). w = d·sc·q -
// dmin·m, so the block is d_x·(d·Σ sc_g·Σ q·q_x - dmin·Σ m_g·bsum_g).
func dotQ2_KGeneric(w []byte, a *blockAct) float32 {
	var sum float32
	for b := range len(w) / 84 {
		blk, x := (*[84]byte)(w[84*b:]), (*[256]int8)(a.qk[256*b:])
		bsums := a.bk[16*b : 16*b+16]
		scales, qs := blk[0:16], blk[16:80]
		var isum, msum int32
		for g, sc := range scales {
			h, j, k := g/8, g%8/2, g%2
			q, shift := qs[32*h+16*k:][:16], 2*j
			var s int32
			for l, v := range q {
				s += int32(v>>shift&3) * int32(x[16*g+l])
			}
			isum += int32(sc&15) * s
			msum += int32(sc>>4) * int32(bsums[g])
		}
		dx := a.dk[b]
		sum += dx*f16At(blk[80:])*float32(isum) - dx*f16At(blk[82:])*float32(msum)
	}
	return sum
}

// Q3_K: 32 bytes hmask, 64 bytes of 2-bit quants in Q2_K's groups, 12 scale
// bytes, d. Group g = 8·h + 2·j + k takes its third bit from hmask[16·k ..] at
// bit 4·h + j, a clear bit subtracting 4; w = d·sc·q, q in -4..3.
func dotQ3_KGeneric(w []byte, a *blockAct) float32 {
	var sum float32
	for b := range len(w) / 110 {
		blk, x := (*[110]byte)(w[110*b:]), (*[256]int8)(a.qk[256*b:])
		hmask, qs := blk[0:32], blk[32:96]
		scales := gguf.Q3KScales(blk[96:108]) // the 16 scales, offset removed
		var isum int32
		for g, sc := range scales {
			h, j, k := g/8, g%8/2, g%2
			q, hm := qs[32*h+16*k:][:16], hmask[16*k:][:16]
			shift, bit := 2*j, byte(1)<<(4*h+j)
			var s int32
			for l, v := range q {
				qv := int32(v >> shift & 3)
				if hm[l]&bit == 0 {
					qv -= 4
				}
				s += qv * int32(x[16*g+l])
			}
			isum += sc * s
		}
		sum += a.dk[b] * f16At(blk[108:]) * float32(isum)
	}
	return sum
}

// Q4_K: d, dmin, 12 scale bytes, 128 bytes of nibbles; each 64 values read 32
// bytes, low nibbles (sub-block 2c) then high (2c+1). w = d·sc·q - dmin·m, so
// the block is d_x·(d·Σ sc_j·Σ q·q_x - dmin·Σ m_j·(bsum_2j + bsum_2j+1)).
func dotQ4_KGeneric(w []byte, a *blockAct) float32 {
	var sum float32
	for b := range len(w) / 144 {
		blk, x := (*[144]byte)(w[144*b:]), (*[256]int8)(a.qk[256*b:])
		scales, qs := blk[4:16], blk[16:144]
		msum := kMinSum(scales, a.bk[16*b:16*b+16])
		var isum int32
		for c := range 4 {
			sc1, _ := gguf.ScaleMinK4(2*c, scales)
			sc2, _ := gguf.ScaleMinK4(2*c+1, scales)
			var s1, s2 int32
			for l, v := range qs[32*c : 32*c+32] {
				s1 += int32(v&15) * int32(x[64*c+l])
				s2 += int32(v>>4) * int32(x[64*c+32+l])
			}
			isum += int32(sc1)*s1 + int32(sc2)*s2
		}
		dx := a.dk[b]
		sum += dx*f16At(blk[0:])*float32(isum) - dx*f16At(blk[2:])*float32(msum)
	}
	return sum
}

// kMinSum is a Q4_K or Q5_K block's min term Σ m_j·(the activation's sum over
// sub-block j), from the activation's 16 sums of 16.
func kMinSum(scales []byte, bsums []int16) int32 {
	var msum int32
	for j := range 8 {
		_, m := gguf.ScaleMinK4(j, scales)
		msum += int32(m) * (int32(bsums[2*j]) + int32(bsums[2*j+1]))
	}
	return msum
}

// Q5_K: d, dmin, 12 scale bytes, 32 bytes qh, 128 bytes of nibbles as Q4_K's;
// value e's fifth bit is bit e/32 of qh[e%32]. w = d·sc·q - dmin·m, as Q4_K.
func dotQ5_KGeneric(w []byte, a *blockAct) float32 {
	var sum float32
	for b := range len(w) / 176 {
		blk, x := (*[176]byte)(w[176*b:]), (*[256]int8)(a.qk[256*b:])
		scales, qh, qs := blk[4:16], blk[16:48], blk[48:176]
		msum := kMinSum(scales, a.bk[16*b:16*b+16])
		var isum int32
		for c := range 4 {
			sc1, _ := gguf.ScaleMinK4(2*c, scales)
			sc2, _ := gguf.ScaleMinK4(2*c+1, scales)
			var s1, s2 int32
			for l, v := range qs[32*c : 32*c+32] {
				q1 := int32(v&15) + 16*int32(qh[l]>>(2*c)&1)
				q2 := int32(v>>4) + 16*int32(qh[l]>>(2*c+1)&1)
				s1 += q1 * int32(x[64*c+l])
				s2 += q2 * int32(x[64*c+32+l])
			}
			isum += int32(sc1)*s1 + int32(sc2)*s2
		}
		dx := a.dk[b]
		sum += dx*f16At(blk[0:])*float32(isum) - dx*f16At(blk[2:])*float32(msum)
	}
	return sum
}

// Q6_K: 128 bytes ql, 64 bytes qh, 16 int8 scales, d. Value 128·h + 32·g + l
// has its low 4 bits in ql[64·h + 32·(g%2) + l] (low nibble for g < 2) and its
// high 2 bits at bit 2·g of qh[32·h + l]; value v takes scale v/16.
// w = d·sc·(q - 32).
func dotQ6_KGeneric(w []byte, a *blockAct) float32 {
	var sum float32
	for b := range len(w) / 210 {
		blk, x := (*[210]byte)(w[210*b:]), (*[256]int8)(a.qk[256*b:])
		var isum int32
		for h := range 2 {
			ql, qh, sc := blk[64*h:][:64], blk[128+32*h:][:32], blk[192+8*h:][:8]
			xh := x[128*h:][:128]
			for l := range 32 {
				is := l / 16
				q1 := int32(ql[l]&15|(qh[l]>>0&3)<<4) - 32
				q2 := int32(ql[l+32]&15|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				isum += int32(int8(sc[is]))*q1*int32(xh[l]) + int32(int8(sc[is+2]))*q2*int32(xh[l+32]) +
					int32(int8(sc[is+4]))*q3*int32(xh[l+64]) + int32(int8(sc[is+6]))*q4*int32(xh[l+96])
			}
		}
		sum += a.dk[b] * f16At(blk[208:]) * float32(isum)
	}
	return sum
}

// BF16: the top halves of float32s, widened exactly (gguf.BFloat16ToFloat32)
// and multiplied by the float32 activation; four accumulators as in dotGeneric.
func dotBF16Generic(w []byte, a *blockAct) float32 {
	n := len(w) / 2
	x := a.x[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		w8, x4 := w[2*i:2*i+8:2*i+8], x[i:i+4:i+4]
		s0 += gguf.BFloat16ToFloat32(binary.LittleEndian.Uint16(w8[0:])) * x4[0]
		s1 += gguf.BFloat16ToFloat32(binary.LittleEndian.Uint16(w8[2:])) * x4[1]
		s2 += gguf.BFloat16ToFloat32(binary.LittleEndian.Uint16(w8[4:])) * x4[2]
		s3 += gguf.BFloat16ToFloat32(binary.LittleEndian.Uint16(w8[6:])) * x4[3]
	}
	for ; i < n; i++ {
		s0 += gguf.BFloat16ToFloat32(binary.LittleEndian.Uint16(w[2*i:])) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// blockRows is an assembly rows kernel: out[i] = row i · a for every i, the
// rows laid end to end in w, rowBytes (whole blocks, > 0) each.
type blockRows func(out []float32, w []byte, rowBytes int, a *blockAct)
