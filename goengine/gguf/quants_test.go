package gguf

import (
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// floatTypeIDs are the types DequantizeBlocks decodes, in id order.
var floatTypeIDs = []TensorType{F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, BF16}

func TestBlockGeometry(t *testing.T) {
	for _, tc := range []struct {
		typ           TensorType
		values, bytes int
	}{
		{F32, 1, 4}, {F16, 1, 2}, {BF16, 1, 2}, {I32, 1, 4},
		{Q4_0, 32, 18}, {Q4_1, 32, 20}, {Q5_0, 32, 22}, {Q5_1, 32, 24}, {Q8_0, 32, 34},
		{Q2_K, 256, 84}, {Q3_K, 256, 110}, {Q4_K, 256, 144}, {Q5_K, 256, 176}, {Q6_K, 256, 210},
		{4, 0, 0}, {5, 0, 0}, {9, 0, 0}, {15, 0, 0}, {16, 0, 0}, {29, 0, 0}, {31, 0, 0}, {39, 0, 0}, {1 << 31, 0, 0},
	} {
		if v, b, s := tc.typ.BlockValues(), tc.typ.BlockBytes(), tc.typ.Supported(); v != tc.values || b != tc.bytes || s != (tc.values > 0) {
			t.Errorf("%s: BlockValues %d, BlockBytes %d, Supported %v; want %d, %d, %v", tc.typ, v, b, s, tc.values, tc.bytes, tc.values > 0)
		}
	}
	if want := "F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K or BF16"; floatTypes != want {
		t.Errorf("floatTypes = %q, want %q", floatTypes, want)
	}
}

func TestByteSize(t *testing.T) {
	for _, typ := range append(slices.Clone(floatTypeIDs), I32) {
		values, bytes := uint64(typ.BlockValues()), uint64(typ.BlockBytes())
		for _, blocks := range []uint64{0, 1, 3, 1000} {
			if size, ok := typ.ByteSize(blocks * values); !ok || size != blocks*bytes {
				t.Errorf("%s: ByteSize(%d) = %d, %v; want %d", typ, blocks*values, size, ok, blocks*bytes)
			}
		}
		if values > 1 {
			for _, n := range []uint64{1, values - 1, values + 1, 3*values + values/2} {
				if _, ok := typ.ByteSize(n); ok {
					t.Errorf("%s: ByteSize(%d) accepted a partial block", typ, n)
				}
			}
		}
		// The most blocks whose size fits in 64 bits, and one more. A type
		// with fewer bytes than values per block (Q4_0, the K-quants) cannot
		// overflow: its largest whole number of blocks fits.
		blocks := uint64(math.MaxUint64) / bytes
		if hi, n := bits.Mul64(blocks, values); hi == 0 {
			if size, ok := typ.ByteSize(n); !ok || size != blocks*bytes {
				t.Errorf("%s: ByteSize(%d) = %d, %v; want %d", typ, n, size, ok, blocks*bytes)
			}
			if hi, n := bits.Mul64(blocks+1, values); hi == 0 {
				if _, ok := typ.ByteSize(n); ok {
					t.Errorf("%s: ByteSize(%d) did not report the overflow", typ, n)
				}
			}
		} else {
			n := math.MaxUint64 / values * values
			if size, ok := typ.ByteSize(n); !ok || size != n/values*bytes {
				t.Errorf("%s: ByteSize(%d) = %d, %v; want %d", typ, n, size, ok, n/values*bytes)
			}
		}
	}
	if _, ok := TensorType(16).ByteSize(256); ok {
		t.Error("IQ2_XXS: ByteSize succeeded")
	}
}

func TestBFloat16ToFloat32(t *testing.T) {
	for _, tc := range []struct {
		h    uint16
		want uint32 // float32 bits
	}{
		{0x3f80, math.Float32bits(1)},
		{0xc000, math.Float32bits(-2)},
		{0x3e20, math.Float32bits(0.15625)},
		{0x0000, 0}, {0x8000, 0x80000000},
		{0x7f80, 0x7f800000}, {0xff80, 0xff800000}, // ±Inf
		{0x7fc0, 0x7fc00000}, {0xffc1, 0xffc10000}, {0x7f81, 0x7f810000}, // NaNs keep sign and payload
		{0x0001, 0x00010000}, // the smallest subnormal, 2^-133
		{0x807f, 0x807f0000}, // the largest negative subnormal
		{0x7f7f, math.Float32bits(math.MaxFloat32) &^ 0xffff},
	} {
		if got := math.Float32bits(BFloat16ToFloat32(tc.h)); got != tc.want {
			t.Errorf("BFloat16ToFloat32(%#04x) = %#08x, want %#08x", tc.h, got, tc.want)
		}
	}
	if got := BFloat16ToFloat32(0x0001); float64(got) != math.Ldexp(1, -133) {
		t.Errorf("BFloat16ToFloat32(0x0001) = %g, want 2^-133", got)
	}
	got := make([]float32, 3)
	DequantizeBlocks(BF16, got, cat(le16(0x3f80), le16(0xbf00), le16(0x7f80)))
	if !slices.Equal(got, []float32{1, -0.5, float32(math.Inf(1))}) {
		t.Errorf("DequantizeBlocks(BF16) = %v", got)
	}
}

// Hand-computed blocks: each test names the elements it checks and why.

func TestDequantizeQ4_0(t *testing.T) {
	// d = 0.5; byte j holds j in its low nibble and 15-j in its high one, so
	// value j = (j-8)·0.5 and value 16+j = (7-j)·0.5.
	block := le16(0x3800)
	for j := range 16 {
		block = append(block, byte(j)|byte(15-j)<<4)
	}
	got := decode(t, Q4_0, block)
	for j := range 16 {
		if want := float32(j-8) * 0.5; got[j] != want {
			t.Errorf("value %d = %g, want %g", j, got[j], want)
		}
		if want := float32(7-j) * 0.5; got[16+j] != want {
			t.Errorf("value %d = %g, want %g", 16+j, got[16+j], want)
		}
	}
}

func TestDequantizeQ4_1(t *testing.T) {
	// d = 0.25, m = -1: value = q/4 - 1; q as in TestDequantizeQ4_0.
	block := cat(le16(0x3400), le16(0xbc00))
	for j := range 16 {
		block = append(block, byte(j)|byte(15-j)<<4)
	}
	got := decode(t, Q4_1, block)
	for j := range 16 {
		if want := float32(j)/4 - 1; got[j] != want {
			t.Errorf("value %d = %g, want %g", j, got[j], want)
		}
		if want := float32(15-j)/4 - 1; got[16+j] != want {
			t.Errorf("value %d = %g, want %g", 16+j, got[16+j], want)
		}
	}
}

func TestDequantizeQ5(t *testing.T) {
	// qh = 0x80000003: the fifth bit is set for values 0, 1 and 31. Nibbles:
	// byte 0 = 0xF2 (value 0 low = 2, value 16 high = 15), byte 15 = 0x7F.
	qs := make([]byte, 16)
	qs[0], qs[1], qs[15] = 0xf2, 0x00, 0x7f
	want := map[int]float32{0: 2 + 16, 1: 0 + 16, 16: 15, 15: 15, 31: 7 + 16, 2: 0}
	q5_0 := decode(t, Q5_0, cat(le16(0x3c00), le32(0x80000003), qs))               // d = 1: value = q - 16
	q5_1 := decode(t, Q5_1, cat(le16(0x4000), le16(0x3800), le32(0x80000003), qs)) // d = 2, m = 0.5
	for i, q := range want {
		if q5_0[i] != q-16 {
			t.Errorf("Q5_0 value %d = %g, want %g", i, q5_0[i], q-16)
		}
		if q5_1[i] != 2*q+0.5 {
			t.Errorf("Q5_1 value %d = %g, want %g", i, q5_1[i], 2*q+0.5)
		}
	}
}

func TestDequantizeQ2_K(t *testing.T) {
	// d = 0.5, dmin = 1. Value 0 reads bits 0–1 of qs[0] with scale byte 0;
	// value 32 bits 2–3 of qs[0] with scale byte 2; value 112 bits 6–7 of
	// qs[16] with scale byte 7; value 128 bits 0–1 of qs[32] with byte 8.
	b := make([]byte, 84)
	b[0], b[2], b[7], b[8] = 0x21, 0x13, 0xf0, 0x0f // (scale, min) = (1, 2), (3, 1), (0, 15), (15, 0)
	b[16+0], b[16+16], b[16+32] = 0xe4, 0xc0, 0x03
	copy(b[80:], cat(le16(0x3800), le16(0x3c00)))
	checkValues(t, Q2_K, b, map[int]float32{
		0:   0.5*1*0 - 2, // qs[0] bits 0–1 = 0
		32:  0.5*3*1 - 1, // qs[0] bits 2–3 = 1
		112: 0*3 - 15,    // qs[16] bits 6–7 = 3
		128: 0.5 * 15 * 3,
		1:   -2, // qs[1] = 0
	})
}

func TestDequantizeQ3_K(t *testing.T) {
	// d = 1. Scale 0: low bits 1 (scales[0] low nibble), high bits 2
	// (scales[8] bits 0–1), so 33 - 32 = 1. Scale 15: low bits from scales[7]
	// high nibble, high bits from scales[11] bits 6–7: 0, so -32. Scale 8:
	// scales[0] high nibble 5, scales[8] bits 4–5 = 3: 53 - 32 = 21.
	b := make([]byte, 110)
	hmask, qs, scales := b[0:32], b[32:96], b[96:108]
	scales[0], scales[8] = 0x51, 0x32
	qs[0], qs[63], qs[32] = 0x03, 0x80, 0x01
	hmask[31], hmask[0] = 0x80, 0x10
	copy(b[108:], le16(0x3c00))
	checkValues(t, Q3_K, b, map[int]float32{
		0:   1 * (3 - 4),  // qs[0] bits 0–1 = 3, hmask[0] bit 0 clear
		255: -32 * 2,      // qs[63] bits 6–7 = 2, hmask[31] bit 7 set
		128: 21 * (1 - 0), // qs[32] bits 0–1 = 1, hmask[0] bit 4 set
		1:   1 * (0 - 4),
	})
}

// k4Scales are 12 scale bytes for Q4_K and Q5_K: sub-block 0 has scale 3 and
// min 2, sub-block 1 zero, sub-block 4 scale 5 | 1<<4 = 21 (the top bits of
// byte 0) and min 7 | 2<<4 = 39 (the top bits of byte 4).
var k4Scales = []byte{0x43, 0, 0, 0, 0x82, 0, 0, 0, 0x75, 0, 0, 0}

func TestDequantizeQ4_K(t *testing.T) {
	// d = 1, dmin = 0.5. Value 0 is qs[0]'s low nibble (10), value 32 its high
	// nibble (sub-block 1), value 128 the low nibble of qs[64] (15).
	b := cat(le16(0x3c00), le16(0x3800), k4Scales, make([]byte, 128))
	qs := b[16:]
	qs[0], qs[64] = 0x9a, 0x0f
	checkValues(t, Q4_K, b, map[int]float32{0: 3*10 - 1, 32: 0, 128: 21*15 - 19.5, 160: 0})
}

func TestDequantizeQ5_K(t *testing.T) {
	// As TestDequantizeQ4_K, plus fifth bits: value 0 is bit 0 of qh[0],
	// value 128 bit 4 of qh[0], value 33 bit 1 of qh[1].
	b := cat(le16(0x3c00), le16(0x3800), k4Scales, make([]byte, 32+128))
	qh, qs := b[16:48], b[48:]
	qs[0], qs[64] = 0x9a, 0x0f
	qh[0], qh[1] = 0x11, 0x02
	checkValues(t, Q5_K, b, map[int]float32{0: 3*(10+16) - 1, 128: 21*(15+16) - 19.5, 33: 0, 1: -1})
}

func TestDequantizeQ6_K(t *testing.T) {
	// d = 0.5; scales 0, 2 and 15 are -2, 3 and 1. Value 0: ql[0] low nibble
	// 5, qh[0] bits 0–1 = 2, so 5 + 32 - 32 = 5. Value 32: ql[32] low nibble
	// and qh[0] bits 2–3, both 0: -32. Value 255: ql[127] high nibble 15,
	// qh[63] bits 6–7 = 3, so 63 - 32 = 31.
	b := make([]byte, 210)
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	ql[0], qh[0], ql[127], qh[63] = 0x05, 0x02, 0xf0, 0xc0
	sc[0], sc[2], sc[15] = 0xfe, 3, 1
	copy(b[208:], le16(0x3800))
	checkValues(t, Q6_K, b, map[int]float32{0: 0.5 * -2 * 5, 32: 0.5 * 3 * -32, 255: 0.5 * 1 * 31, 64: 0.5 * 0 * -32})
}

func decode(t *testing.T, typ TensorType, block []byte) []float32 {
	t.Helper()
	if len(block) != typ.BlockBytes() {
		t.Fatalf("%s test block has %d bytes, want %d", typ, len(block), typ.BlockBytes())
	}
	got := make([]float32, typ.BlockValues())
	DequantizeBlocks(typ, got, block)
	return got
}

func checkValues(t *testing.T, typ TensorType, block []byte, want map[int]float32) {
	t.Helper()
	got := decode(t, typ, block)
	for i, w := range want {
		if got[i] != w {
			t.Errorf("%s value %d = %g, want %g", typ, i, got[i], w)
		}
	}
}

// The reference decoders below transcribe ggml-quants.c's loops literally
// (one output pointer, the same loop nests); quants.go indexes differently
// (Q2_K and Q3_K by groups of 16, Q3_K's scales bit by bit), so agreement on
// random blocks checks the element order of both.

func refQ2_K(b []byte, y []float32) {
	d, dmin := half(b[80:]), half(b[82:])
	q, k, is := b[16:], 0, 0
	for n := 0; n < qkK; n += 128 {
		for shift := 0; shift < 8; shift += 2 {
			for _, off := range []int{0, 16} {
				sc := b[is]
				is++
				dl, ml := d*float32(sc&0xf), float32(dmin*float32(sc>>4))
				for l := range 16 {
					y[k] = float32(dl*float32(int8(q[l+off]>>shift&3))) - ml
					k++
				}
			}
		}
		q = q[32:]
	}
}

func refQ3_K(b []byte, y []float32) {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	var aux [4]uint32
	for i := range 3 {
		aux[i] = binary.LittleEndian.Uint32(b[96+4*i:])
	}
	tmp := aux[2]
	aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
	aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
	aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4)
	aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4)
	var scales [16]int8
	for i := range 16 {
		scales[i] = int8(aux[i/4] >> (8 * (i % 4)))
	}
	dAll := half(b[108:])
	q, hm, m, k, is := b[32:96], b[0:32], byte(1), 0, 0
	for n := 0; n < qkK; n += 128 {
		for shift := 0; shift < 8; shift += 2 {
			for _, off := range []int{0, 16} {
				dl := dAll * float32(int(scales[is])-32)
				is++
				for l := range 16 {
					x := int(int8(q[l+off] >> shift & 3))
					if hm[l+off]&m == 0 {
						x -= 4
					}
					y[k] = dl * float32(x)
					k++
				}
			}
			m <<= 1
		}
		q = q[32:]
	}
}

// refScaleMin unpacks Q4_K/Q5_K scales as gguf-py does: the 12 bytes as rows
// d, m, m_d of 4; scale = d & 63 then (m_d & 15) | (d >> 2 & 48); min = m & 63
// then (m_d >> 4) | (m >> 2 & 48).
func refScaleMin(s []byte) (sc, mn [8]byte) {
	for j := range 4 {
		sc[j], mn[j] = s[j]&0x3f, s[4+j]&0x3f
		sc[4+j] = s[8+j]&0x0f | (s[j]>>2)&0x30
		mn[4+j] = s[8+j]>>4 | (s[4+j]>>2)&0x30
	}
	return sc, mn
}

func refQ45_K(b []byte, y []float32, five bool) {
	d, dmin := half(b[0:]), half(b[2:])
	sc, mn := refScaleMin(b[4:16])
	ql, qh := b[16:], []byte(nil)
	if five {
		qh, ql = b[16:48], b[48:]
	}
	k := 0
	for j := range 4 {
		for _, hi := range []int{0, 1} {
			is := 2*j + hi
			d1, m1 := d*float32(sc[is]), float32(dmin*float32(mn[is]))
			for l := range 32 {
				q := ql[32*j+l] >> (4 * hi) & 0xf
				if five && qh[l]>>is&1 != 0 {
					q += 16
				}
				y[k] = float32(d1*float32(q)) - m1
				k++
			}
		}
	}
}

func refQ6_K(b []byte, y []float32) {
	d := half(b[208:])
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	for n := 0; n < qkK; n += 128 {
		for l := range 32 {
			is := l / 16
			q1 := int8(ql[l]&0xf|((qh[l]>>0)&3)<<4) - 32
			q2 := int8(ql[l+32]&0xf|((qh[l]>>2)&3)<<4) - 32
			q3 := int8(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
			q4 := int8(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
			y[n+l] = d * float32(int8(sc[is])) * float32(q1)
			y[n+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[n+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[n+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
		ql, qh, sc = ql[64:], qh[32:], sc[8:]
	}
}

// refSmall decodes one 32-value block of Q4_0, Q4_1, Q5_0 or Q5_1 as
// dequantize_row_q4_0 … q5_1 do.
func refSmall(typ TensorType, b []byte, y []float32) {
	d, m := half(b), float32(0)
	rest := b[2:]
	if typ == Q4_1 || typ == Q5_1 {
		m, rest = half(b[2:]), b[4:]
	}
	var qh uint32
	if typ == Q5_0 || typ == Q5_1 {
		qh, rest = binary.LittleEndian.Uint32(rest), rest[4:]
	}
	for j := range 16 {
		x0, x1 := int(rest[j]&0x0f), int(rest[j]>>4)
		switch typ {
		case Q4_0:
			y[j], y[j+16] = float32(x0-8)*d, float32(x1-8)*d
		case Q4_1:
			y[j], y[j+16] = float32(float32(x0)*d)+m, float32(float32(x1)*d)+m
		case Q5_0, Q5_1:
			x0 |= int((qh>>j)<<4) & 0x10
			x1 |= int(qh>>(j+12)) & 0x10
			if typ == Q5_0 {
				y[j], y[j+16] = float32(x0-16)*d, float32(x1-16)*d
			} else {
				y[j], y[j+16] = float32(float32(x0)*d)+m, float32(float32(x1)*d)+m
			}
		}
	}
}

func reference(typ TensorType, b []byte, y []float32) {
	switch typ {
	case Q4_0, Q4_1, Q5_0, Q5_1:
		refSmall(typ, b, y)
	case Q8_0:
		for i := range 32 {
			y[i] = float32(int8(b[2+i])) * half(b)
		}
	case Q2_K:
		refQ2_K(b, y)
	case Q3_K:
		refQ3_K(b, y)
	case Q4_K, Q5_K:
		refQ45_K(b, y, typ == Q5_K)
	case Q6_K:
		refQ6_K(b, y)
	}
}

// randomBlocks returns n blocks of random bytes whose float16 scales are
// finite (so that every value can be compared bit for bit).
func randomBlocks(r *rand.Rand, typ TensorType, n int) []byte {
	src := make([]byte, n*typ.BlockBytes())
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	for b := 0; b < len(src); b += typ.BlockBytes() {
		for _, off := range scaleOffsets[typ] {
			h := uint16(r.Uint32()) &^ 0x4000 // exponent never all ones
			binary.LittleEndian.PutUint16(src[b+off:], h)
		}
	}
	return src
}

func TestDequantizeBlocksMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range floatTypeIDs {
		if typ.BlockValues() == 1 {
			continue
		}
		const n = 200
		src := randomBlocks(r, typ, n)
		got := make([]float32, n*typ.BlockValues())
		DequantizeBlocks(typ, got, src)
		want := make([]float32, typ.BlockValues())
		bad := 0
		for b := range n {
			reference(typ, src[b*typ.BlockBytes():(b+1)*typ.BlockBytes()], want)
			for i, w := range want {
				if g := got[b*typ.BlockValues()+i]; math.Float32bits(g) != math.Float32bits(w) && bad < 5 {
					t.Errorf("%s block %d value %d = %g, want %g", typ, b, i, g, w)
					bad++
				}
			}
		}
	}
}

func TestDequantizeAndFloat32s(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, typ := range floatTypeIDs {
		// Two rows of two blocks each (two values each for a plain type).
		rowValues := 2 * typ.BlockValues()
		n := 2 * rowValues
		src := randomBlocks(r, typ, n/typ.BlockValues())
		want := make([]float32, n)
		DequantizeBlocks(typ, want, src)
		got := make([]float32, n)
		if err := Dequantize(got, src, typ); err != nil || !slices.Equal(bitsOf(got), bitsOf(want)) {
			t.Errorf("%s: Dequantize: %v", typ, err)
		}
		tf := testFile{tensors: []testTensor{{name: "w", dims: []uint64{uint64(rowValues), 2}, typ: typ, data: src}}}
		data, _ := tf.encode()
		f, err := Parse(data, "q.gguf")
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if fromFile, err := f.Float32s("w"); err != nil || !slices.Equal(bitsOf(fromFile), bitsOf(want)) {
			t.Errorf("%s: Float32s: %v", typ, err)
		}
		if typ.BlockValues() > 1 {
			if err := Dequantize(got[:n-1], src, typ); err == nil || !strings.Contains(err.Error(), "whole number of") {
				t.Errorf("%s: Dequantize of a partial block: %v", typ, err)
			}
		}
		if err := Dequantize(got, src[:len(src)-1], typ); err == nil {
			t.Errorf("%s: Dequantize of a short buffer succeeded", typ)
		}
	}
	err := Dequantize(make([]float32, 256), make([]byte, 256), TensorType(23))
	if err == nil || !strings.Contains(err.Error(), "cannot convert IQ4_XS values to float32 (expected F32, F16, Q4_0") {
		t.Errorf("Dequantize(IQ4_XS): %v", err)
	}
}

func bitsOf(xs []float32) []uint32 {
	out := make([]uint32, len(xs))
	for i, x := range xs {
		out[i] = math.Float32bits(x)
	}
	return out
}

func TestDequantizeBlocksPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  TensorType
		dst  int
		src  int
	}{
		{"I32", I32, 2, 8},
		{"unsupported", TensorType(16), 256, 66},
		{"partial block", Q4_0, 31, 18},
		{"short source", Q4_K, 256, 143},
		{"long source", Q6_K, 256, 211},
		{"F16 odd bytes", F16, 2, 3},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: DequantizeBlocks did not panic", tc.name)
				}
			}()
			DequantizeBlocks(tc.typ, make([]float32, tc.dst), make([]byte, tc.src))
		}()
	}
	DequantizeBlocks(Q4_K, nil, nil) // zero blocks is fine
}

func TestDequantizeBlocksDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, typ := range floatTypeIDs {
		n := 512 / typ.BlockValues() * typ.BlockValues()
		src, dst := randomBlocks(r, typ, n/typ.BlockValues()), make([]float32, n)
		if allocs := testing.AllocsPerRun(10, func() { DequantizeBlocks(typ, dst, src) }); allocs != 0 {
			t.Errorf("%s: %g allocations per call", typ, allocs)
		}
	}
}

func TestFirstNonFiniteScale(t *testing.T) {
	for _, typ := range floatTypeIDs {
		size := typ.BlockBytes()
		offsets := scaleOffsets[typ]
		if len(offsets) == 0 {
			// Plain types have no scales: NaN values are not looked at.
			nan := make([]byte, 4*size)
			for i := range nan {
				nan[i] = 0xff
			}
			if got := FirstNonFiniteScale(typ, nan); got != -1 {
				t.Errorf("%s: FirstNonFiniteScale = %d, want -1", typ, got)
			}
			continue
		}
		// Four blocks whose every byte is 0xff except finite scales: quants
		// that look like NaN are not scales.
		src := make([]byte, 4*size)
		for i := range src {
			src[i] = 0xff
		}
		for b := range 4 {
			for _, off := range offsets {
				binary.LittleEndian.PutUint16(src[b*size+off:], 0x7bff) // 65504, the largest finite
			}
		}
		if got := FirstNonFiniteScale(typ, src); got != -1 {
			t.Errorf("%s: all scales finite: FirstNonFiniteScale = %d, want -1", typ, got)
		}
		for k, off := range offsets { // d, then m or dmin
			for _, bad := range []uint16{0x7c00, 0xfc00, 0x7e00, 0xfc01} { // +Inf, -Inf, NaNs
				s := slices.Clone(src)
				binary.LittleEndian.PutUint16(s[3*size+off:], 0x7c00)
				binary.LittleEndian.PutUint16(s[2*size+off:], bad)
				if got := FirstNonFiniteScale(typ, s); got != 2 {
					t.Errorf("%s: scale field %d = %#04x in block 2: FirstNonFiniteScale = %d, want 2", typ, k, bad, got)
				}
			}
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: FirstNonFiniteScale of a partial block did not panic", typ)
				}
			}()
			FirstNonFiniteScale(typ, src[:size-1])
		}()
	}
	if got := FirstNonFiniteScale(I32, []byte{0xff, 0xff, 0xff, 0xff}); got != -1 {
		t.Errorf("I32: FirstNonFiniteScale = %d", got)
	}
}

func BenchmarkDequantizeBlocks(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, typ := range floatTypeIDs {
		const n = 4096
		src, dst := randomBlocks(r, typ, n/typ.BlockValues()), make([]float32, n)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(4 * n) // float32 bytes produced
			for range b.N {
				DequantizeBlocks(typ, dst, src)
			}
		})
	}
}
