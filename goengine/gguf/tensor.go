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
// storage (row-major) order: F32 is copied, F16 and BF16 widened exactly and
// the block types dequantized as ggml does (spec/format.md §5.3). An I32
// tensor is an error.
func (f *File) Float32s(name string) ([]float32, error) {
	t, data, err := f.tensorOf(name)
	if err != nil {
		return nil, err
	}
	if t.Type == I32 {
		return nil, errorf(f.Path, tensorWhere(name), "type: expected %s, found %s", floatTypes, t.Type)
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

// Dequantize converts len(dst) values of type typ (any supported type but
// I32) stored little-endian in src to float32, by DequantizeBlocks. src must
// hold exactly the bytes of len(dst) values, and for a block type len(dst)
// must be a whole number of blocks; otherwise it returns an error.
func Dequantize(dst []float32, src []byte, typ TensorType) error {
	if typ == I32 || !typ.Supported() {
		return fmt.Errorf("cannot convert %s values to float32 (expected %s)", typ, floatTypes)
	}
	size, ok := typ.ByteSize(uint64(len(dst)))
	if !ok {
		return fmt.Errorf("%d %s values are not a whole number of %d-value blocks", len(dst), typ, typ.BlockValues())
	}
	if size != uint64(len(src)) {
		return fmt.Errorf("%d %s values need %d bytes; %d bytes given", len(dst), typ, size, len(src))
	}
	DequantizeBlocks(typ, dst, src)
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
