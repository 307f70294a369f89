package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// KV is one metadata pair to write.
type KV struct {
	Key   string
	Value Value
}

// TensorToWrite is one tensor to write: its row-major shape, type and the
// little-endian bytes of its data (see Quantize).
type TensorToWrite struct {
	Name  string
	Shape []int
	Type  TensorType
	Data  []byte
}

// Write encodes a GGUF v3 file (spec/format.md §1–4) with the default alignment
// of 32. Scalar values and arrays of strings are supported: what a model file
// needs. Its output is what the reader accepts; the writer-side rules it checks
// are the ones a caller can get wrong (sizes, names).
func Write(out io.Writer, metadata []KV, tensors []TensorToWrite) error {
	const alignment = 32
	w := bufio.NewWriter(out)
	le := binary.LittleEndian
	u32 := func(x uint32) { w.Write(le.AppendUint32(nil, x)) }
	u64 := func(x uint64) { w.Write(le.AppendUint64(nil, x)) }
	str := func(s string) { u64(uint64(len(s))); w.WriteString(s) }

	w.WriteString("GGUF")
	u32(3)
	u64(uint64(len(tensors)))
	u64(uint64(len(metadata)))
	for _, kv := range metadata {
		str(kv.Key)
		u32(uint32(kv.Value.Type))
		if err := writeValue(w, kv.Value); err != nil {
			return fmt.Errorf("gguf: key %q: %w", kv.Key, err)
		}
	}
	var offset uint64
	for _, t := range tensors {
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		size, ok := t.Type.ByteSize(uint64(n))
		if !ok || size != uint64(len(t.Data)) {
			return fmt.Errorf("gguf: tensor %q: %d %s values need a whole number of blocks of %d bytes, got %d", t.Name, n, t.Type, size, len(t.Data))
		}
		if len(t.Name) >= 64 {
			return fmt.Errorf("gguf: tensor name %q is over 63 bytes", t.Name)
		}
		str(t.Name)
		u32(uint32(len(t.Shape)))
		for i := len(t.Shape) - 1; i >= 0; i-- { // GGUF lists ne[0], the fastest dimension, first
			u64(uint64(t.Shape[i]))
		}
		u32(uint32(t.Type))
		u64(offset)
		offset = alignUp(offset+size, alignment)
	}
	written := w.Buffered() // the header is small: nothing was flushed yet
	pad := func(n int) { w.Write(make([]byte, n)) }
	pad(int(alignUp(uint64(written), alignment)) - written)
	for _, t := range tensors {
		w.Write(t.Data)
		pad(int(alignUp(uint64(len(t.Data)), alignment)) - len(t.Data))
	}
	return w.Flush()
}

func writeValue(w *bufio.Writer, v Value) error {
	le := binary.LittleEndian
	switch v.Type {
	case UINT8, INT8, BOOL:
		b := byte(v.Uint) | byte(v.Int)
		if v.Bool {
			b = 1
		}
		return w.WriteByte(b)
	case UINT32:
		w.Write(le.AppendUint32(nil, uint32(v.Uint)))
	case INT32:
		w.Write(le.AppendUint32(nil, uint32(v.Int)))
	case UINT64:
		w.Write(le.AppendUint64(nil, v.Uint))
	case INT64:
		w.Write(le.AppendUint64(nil, uint64(v.Int)))
	case FLOAT32:
		w.Write(le.AppendUint32(nil, math.Float32bits(float32(v.Float))))
	case FLOAT64:
		w.Write(le.AppendUint64(nil, math.Float64bits(v.Float)))
	case STRING:
		w.Write(le.AppendUint64(nil, uint64(len(v.Str))))
		w.WriteString(v.Str)
	case ARRAY:
		if v.ElemType != STRING {
			return fmt.Errorf("writing arrays of %s is not supported", v.ElemType)
		}
		w.Write(le.AppendUint32(nil, uint32(STRING)))
		w.Write(le.AppendUint64(nil, uint64(len(v.Strs))))
		for _, s := range v.Strs {
			w.Write(le.AppendUint64(nil, uint64(len(s))))
			w.WriteString(s)
		}
	default:
		return fmt.Errorf("writing %s values is not supported", v.Type)
	}
	return nil
}

// Quantize encodes float32 values as little-endian bytes of type typ: F32
// exactly, F16 rounded to nearest even, Q8_0 per block of 32 with d = max|x|/127
// and q = round(x/d), half away from zero — as llama.cpp and jaxmodel/export.py
// do (spec/format.md §5.3).
func Quantize(values []float32, typ TensorType) ([]byte, error) {
	switch typ {
	case F32:
		out := make([]byte, 0, 4*len(values))
		for _, v := range values {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
		return out, nil
	case F16:
		out := make([]byte, 0, 2*len(values))
		for _, v := range values {
			out = binary.LittleEndian.AppendUint16(out, Float32ToFloat16(v))
		}
		return out, nil
	case Q8_0:
		if len(values)%Q8_0BlockValues != 0 {
			return nil, fmt.Errorf("Q8_0 needs a multiple of %d values, got %d", Q8_0BlockValues, len(values))
		}
		out := make([]byte, 0, len(values)/Q8_0BlockValues*Q8_0BlockBytes)
		for b := 0; b < len(values); b += Q8_0BlockValues {
			out = appendQ8_0Block(out, values[b:b+Q8_0BlockValues])
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot encode float32 values as %s", typ)
}

func appendQ8_0Block(out []byte, block []float32) []byte {
	var amax float32
	for _, v := range block {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	inv := float32(0)
	if d != 0 {
		inv = 1 / d
	}
	out = binary.LittleEndian.AppendUint16(out, Float32ToFloat16(d))
	for _, v := range block {
		out = append(out, byte(int8(math.Round(float64(v*inv)))))
	}
	return out
}

// Float32ToFloat16 rounds a float32 to the nearest IEEE binary16 value (ties to
// even), overflowing to infinity; NaN stays NaN.
func Float32ToFloat16(f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23) & 0xff
	mant := bits & 0x7fffff
	switch {
	case exp == 0xff: // infinity or NaN (keep a quiet bit so NaN stays NaN)
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127 > 15:
		return sign | 0x7c00
	}
	// Place the significand (implicit bit included) so that bit 13 is the
	// half's last bit, then round to nearest even on the bits shifted out.
	e := exp - 127 + 15
	m := mant | 0x800000
	shift := 13
	if e <= 0 { // subnormal half: shift further right
		shift += 1 - e
		e = 0
		if shift > 24 {
			return sign
		}
	}
	if exp == 0 { // float32 subnormals are far below the half range
		return sign
	}
	half := m >> shift
	rest := m & (1<<shift - 1)
	mid := uint32(1) << (shift - 1)
	if rest > mid || (rest == mid && half&1 == 1) {
		half++
	}
	// half holds the implicit bit for normals; adding it to the exponent field
	// carries correctly when rounding overflows the significand.
	if e == 0 {
		return sign | uint16(half)
	}
	return sign | (uint16(e-1)<<10 + uint16(half))
}
