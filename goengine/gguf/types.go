package gguf

import (
	"fmt"
	"math/bits"
	"strings"
)

// ValueType is the type of a metadata value (spec/format.md §2).
type ValueType uint32

// The metadata value types of GGUF v3.
const (
	UINT8   ValueType = 0
	INT8    ValueType = 1
	UINT16  ValueType = 2
	INT16   ValueType = 3
	UINT32  ValueType = 4
	INT32   ValueType = 5
	FLOAT32 ValueType = 6
	BOOL    ValueType = 7
	STRING  ValueType = 8
	ARRAY   ValueType = 9
	UINT64  ValueType = 10
	INT64   ValueType = 11
	FLOAT64 ValueType = 12
)

var valueTypeNames = [...]string{
	UINT8: "UINT8", INT8: "INT8", UINT16: "UINT16", INT16: "INT16",
	UINT32: "UINT32", INT32: "INT32", FLOAT32: "FLOAT32", BOOL: "BOOL",
	STRING: "STRING", ARRAY: "ARRAY", UINT64: "UINT64", INT64: "INT64",
	FLOAT64: "FLOAT64",
}

// String returns the spec's name of the type ("UINT32", "STRING", ...), or
// "ValueType(N)" for a number that is not a GGUF value type.
func (t ValueType) String() string {
	if uint64(t) < uint64(len(valueTypeNames)) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// Valid reports whether t is one of the 13 value types of GGUF v3.
func (t ValueType) Valid() bool { return t <= FLOAT64 }

// IsInteger reports whether t is one of the eight integer types.
func (t ValueType) IsInteger() bool {
	switch t {
	case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64:
		return true
	}
	return false
}

// IsSigned reports whether t is a signed integer type.
func (t ValueType) IsSigned() bool {
	return t == INT8 || t == INT16 || t == INT32 || t == INT64
}

// IsFloat reports whether t is FLOAT32 or FLOAT64.
func (t ValueType) IsFloat() bool { return t == FLOAT32 || t == FLOAT64 }

// fixedSize is the encoded size in bytes of one value of a fixed-size type,
// or 0 for STRING, ARRAY and unknown types.
func (t ValueType) fixedSize() uint64 {
	switch t {
	case UINT8, INT8, BOOL:
		return 1
	case UINT16, INT16:
		return 2
	case UINT32, INT32, FLOAT32:
		return 4
	case UINT64, INT64, FLOAT64:
		return 8
	}
	return 0
}

// TensorType is a ggml tensor type id (spec/format.md §5.3).
type TensorType uint32

// The tensor types this package reads: plain floats, ggml's block
// quantizations (spec/format.md §5.3) and I32. I32 appears only in goldens
// containers (spec/goldens.md), and the model layer rejects it for weights.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
	Q4_1 TensorType = 3
	Q5_0 TensorType = 6
	Q5_1 TensorType = 7
	Q8_0 TensorType = 8
	Q2_K TensorType = 10
	Q3_K TensorType = 11
	Q4_K TensorType = 12
	Q5_K TensorType = 13
	Q6_K TensorType = 14
	I32  TensorType = 26
	BF16 TensorType = 30
)

// Q8_0 block geometry: 32 values per block, stored as a float16 scale and
// 32 int8 quants (spec/format.md §5.3).
const (
	Q8_0BlockValues = 32
	Q8_0BlockBytes  = 34
)

// blockGeometry holds, for each supported type, the values per block and the
// bytes per block (ggml's blck_size and type_size); the zero entry means
// unsupported. A plain type is a block of one value. This is the one table of
// the supported types: Supported, ByteSize and the error messages read it.
var blockGeometry = [...]struct{ values, bytes int }{
	F32: {1, 4}, F16: {1, 2}, BF16: {1, 2}, I32: {1, 4},
	Q4_0: {32, 18}, Q4_1: {32, 20}, Q5_0: {32, 22}, Q5_1: {32, 24}, Q8_0: {Q8_0BlockValues, Q8_0BlockBytes},
	Q2_K: {256, 84}, Q3_K: {256, 110}, Q4_K: {256, 144}, Q5_K: {256, 176}, Q6_K: {256, 210},
}

// ggml's names for its tensor types, so that an error about a type outside
// the profile can say "Q4_K" rather than just "12". Ids 4, 5 and 31–33 were
// removed from ggml and have no name.
var tensorTypeNames = map[TensorType]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1",
	8: "Q8_0", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K",
	14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS",
	19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS",
	24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
	30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}

// String returns ggml's name of the type ("F32", "Q8_0", "Q4_K", ...), or
// "TensorType(N)" for an id ggml does not define.
func (t TensorType) String() string {
	if name, ok := tensorTypeNames[t]; ok {
		return name
	}
	return fmt.Sprintf("TensorType(%d)", uint32(t))
}

// BlockValues returns the number of values in one block of type t: 1 for F32,
// F16, BF16 and I32, 32 or 256 for the block quantizations, 0 if t is not
// supported.
func (t TensorType) BlockValues() int {
	if uint64(t) < uint64(len(blockGeometry)) {
		return blockGeometry[t].values
	}
	return 0
}

// BlockBytes returns the size in bytes of one block of type t (4 for F32 and
// I32, 2 for F16 and BF16), or 0 if t is not supported.
func (t TensorType) BlockBytes() int {
	if uint64(t) < uint64(len(blockGeometry)) {
		return blockGeometry[t].bytes
	}
	return 0
}

// Supported reports whether this package can read tensors of type t: F32,
// F16, BF16, I32, or one of the block quantizations Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K.
func (t TensorType) Supported() bool { return t.BlockValues() > 0 }

// ByteSize returns the number of bytes that n values of type t occupy, and
// false if t is not supported, n is not a whole number of blocks, or the size
// overflows 64 bits.
func (t TensorType) ByteSize(n uint64) (uint64, bool) {
	values, bytes := uint64(t.BlockValues()), uint64(t.BlockBytes())
	if values == 0 || n%values != 0 {
		return 0, false
	}
	hi, size := bits.Mul64(n/values, bytes)
	return size, hi == 0
}

// typeList names the supported types, in id order, as an error message lists
// them: "F32 (0), F16 (1), … or BF16 (30)" with ids, or "F32, F16, … or BF16"
// without. I32 is left out unless withI32.
func typeList(withIDs, withI32 bool) string {
	var names []string
	for t := range blockGeometry {
		typ := TensorType(t)
		if !typ.Supported() || (typ == I32 && !withI32) {
			continue
		}
		if withIDs {
			names = append(names, fmt.Sprintf("%s (%d)", typ, t))
		} else {
			names = append(names, typ.String())
		}
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

var (
	// supportedTypes is what the container accepts, for parse errors.
	supportedTypes = typeList(true, true)
	// floatTypes is what converts to float32, for Dequantize and Float32s.
	floatTypes = typeList(false, false)
)
