package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// tensorOf returns the tensor named name and its bytes, or an error.
func (f *File) tensorOf(name string) (*TensorInfo, []byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, nil, errorf(f.Path, tensorWhere(name), "missing")
	}
	data := f.TensorData(t)
	if data == nil {
		return nil, nil, errorf(f.Path, tensorWhere(name), "data not available (file closed?)")
	}
	return t, data, nil
}

// Float32s returns the values of the tensor named name as float32, in
// storage (row-major) order: F32 is copied, F16 widened exactly and Q8_0
// dequantized (spec/format.md §5.3). An I32 tensor is an error.
func (f *File) Float32s(name string) ([]float32, error) {
	t, data, err := f.tensorOf(name)
	if err != nil {
		return nil, err
	}
	if t.Type == I32 {
		return nil, errorf(f.Path, tensorWhere(name), "type: expected F32, F16 or Q8_0, found %s", t.Type)
	}
	out := make([]float32, t.NumElements())
	if err := Dequantize(out, data, t.Type); err != nil {
		return nil, &FormatError{Path: f.Path, Where: tensorWhere(name), Msg: err.Error(), Err: err}
	}
	return out, nil
}

// Int32s returns the values of the I32 tensor named name (goldens token ids).
func (f *File) Int32s(name string) ([]int32, error) {
	t, data, err := f.tensorOf(name)
	if err != nil {
		return nil, err
	}
	if t.Type != I32 {
		return nil, errorf(f.Path, tensorWhere(name), "type: expected I32, found %s", t.Type)
	}
	out := make([]int32, len(data)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out, nil
}

// Dequantize converts len(dst) values of type typ (F32, F16 or Q8_0) stored
// little-endian in src to float32. src must hold exactly the bytes of
// len(dst) values (for Q8_0, len(dst) must be a multiple of 32).
func Dequantize(dst []float32, src []byte, typ TensorType) error {
	if typ == I32 || !typ.Supported() {
		return fmt.Errorf("cannot convert %s values to float32", typ)
	}
	size, ok := typ.ByteSize(uint64(len(dst)))
	if !ok || size != uint64(len(src)) {
		return fmt.Errorf("%d %s values need a whole number of blocks; %d bytes given", len(dst), typ, len(src))
	}
	switch typ {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = Float16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case Q8_0:
		for b := 0; b < len(dst)/Q8_0BlockValues; b++ {
			DequantizeQ8_0Block(dst[b*Q8_0BlockValues:(b+1)*Q8_0BlockValues], src[b*Q8_0BlockBytes:(b+1)*Q8_0BlockBytes])
		}
	}
	return nil
}

// DequantizeQ8_0Block decodes one 34-byte Q8_0 block into 32 values (spec/format.md
// §5.3): a little-endian F16 scale d, then 32 int8 q; value i = float32(d) * q[i].
// The one Q8_0 decoder of the engine, as Float16ToFloat32 is for F16.
func DequantizeQ8_0Block(dst []float32, block []byte) {
	d := Float16ToFloat32(binary.LittleEndian.Uint16(block))
	q := block[2:Q8_0BlockBytes]
	for i := range Q8_0BlockValues {
		dst[i] = d * float32(int8(q[i]))
	}
}

// Float16ToFloat32 widens an IEEE 754 binary16 value, given by its bits, to
// float32: the one F16 decoder of the engine (the tensor package's generic
// kernels call it, and its vector kernels are tested against those). The
// conversion is exact for every value: moving the exponent and mantissa to
// float32's positions and rebiasing covers normal numbers; the all-ones
// exponent stays all ones (infinities keep their sign, NaNs their payload);
// subnormals are m·2^-24, exact in float32. Branch-light and small enough to
// inline, as the generic dot products call it per element.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	bits := uint32(h&0x7fff) << 13
	switch bits & 0x0f800000 {
	case 0x0f800000: // infinity or NaN
		bits += (255 - 31) << 23
	case 0: // ±0 or subnormal
		bits = math.Float32bits(float32(bits>>13) * (1.0 / (1 << 24)))
	default: // normal: rebias the exponent from 15 to 127
		bits += (127 - 15) << 23
	}
	return math.Float32frombits(sign | bits)
}
