package gguf

import (
	"fmt"
	"math/bits"
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

// The tensor types this package reads. F32, F16 and Q8_0 are the model
// profile's weight types; I32 appears only in goldens containers
// (spec/goldens.md), and the model layer rejects it for weights.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q8_0 TensorType = 8
	I32  TensorType = 26
)

// Q8_0 block geometry: 32 values per block, stored as a float16 scale and
// 32 int8 quants (spec/format.md §5.3).
const (
	Q8_0BlockValues = 32
	Q8_0BlockBytes  = 34
)

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

// Supported reports whether this package can read tensors of type t:
// F32, F16, Q8_0 or I32.
func (t TensorType) Supported() bool {
	return t == F32 || t == F16 || t == Q8_0 || t == I32
}

// ByteSize returns the number of bytes that n values of type t occupy, and
// false if t is not supported, n is not a whole number of Q8_0 blocks, or the
// size overflows 64 bits.
func (t TensorType) ByteSize(n uint64) (uint64, bool) {
	var hi, size uint64
	switch t {
	case F32, I32:
		hi, size = bits.Mul64(n, 4)
	case F16:
		hi, size = bits.Mul64(n, 2)
	case Q8_0:
		if n%Q8_0BlockValues != 0 {
			return 0, false
		}
		hi, size = bits.Mul64(n/Q8_0BlockValues, Q8_0BlockBytes)
	default:
		return 0, false
	}
	return size, hi == 0
}
