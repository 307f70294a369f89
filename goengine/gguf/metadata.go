package gguf

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Typed metadata getters. Each fails with a *FormatError naming the file and
// the key, saying what was expected and what was found, when the key is
// missing or its value has the wrong type or range. Integer getters accept
// any of the eight integer types when the value fits (spec/format.md §6.1);
// float getters accept FLOAT32 and FLOAT64.

// lookup returns the value of key, or an error for a missing key.
func (f *File) lookup(key string) (Value, error) {
	v, ok := f.Metadata[key]
	if !ok {
		return Value{}, errorf(f.Path, keyWhere(key), "missing")
	}
	return v, nil
}

func (f *File) typeError(key, expected string, v Value) error {
	return errorf(f.Path, keyWhere(key), "type: expected %s, found %s", expected, v.TypeName())
}

// String returns the value of a STRING key.
func (f *File) String(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	if v.Type != STRING {
		return "", f.typeError(key, "STRING", v)
	}
	return v.Str, nil
}

// Bool returns the value of a BOOL key.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	if v.Type != BOOL {
		return false, f.typeError(key, "BOOL", v)
	}
	return v.Bool, nil
}

// Uint returns the value of an integer key of any of the eight integer
// types, provided it is non-negative.
func (f *File) Uint(key string) (uint64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	if !v.Type.IsInteger() {
		return 0, f.typeError(key, "an integer", v)
	}
	if v.Type.IsSigned() && v.Int < 0 {
		return 0, errorf(f.Path, keyWhere(key), "expected a non-negative integer, found %d", v.Int)
	}
	return intValueUnchecked(v), nil
}

// Int returns the value of an integer key of any of the eight integer types,
// provided it fits an int64.
func (f *File) Int(key string) (int64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	if !v.Type.IsInteger() {
		return 0, f.typeError(key, "an integer", v)
	}
	if v.Type.IsSigned() {
		return v.Int, nil
	}
	if v.Uint > math.MaxInt64 {
		return 0, errorf(f.Path, keyWhere(key), "expected an integer that fits int64, found %d", v.Uint)
	}
	return int64(v.Uint), nil
}

// Float returns the value of a FLOAT32 or FLOAT64 key.
//
// A FLOAT32 is returned as the shortest decimal that rounds to the stored
// float32, as spec/format.md §6.1 prescribes for building a config (1e-5 is
// stored as 9.99999974738e-06 and read back as 1e-05); converting the result
// to float32 gives back exactly the stored bits. Value.Float holds the exact
// widening instead.
func (f *File) Float(key string) (float64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch v.Type {
	case FLOAT32:
		return ShortestFloat32(float32(v.Float)), nil
	case FLOAT64:
		return v.Float, nil
	}
	return 0, f.typeError(key, "FLOAT32 or FLOAT64", v)
}

// ShortestFloat32 returns the float64 value of the shortest decimal that
// rounds to x (strconv.FormatFloat(x, 'g', -1, 32)): 9.99999974738e-06
// becomes 1e-05. float32 of the result is x again.
func ShortestFloat32(x float32) float64 {
	s := strconv.FormatFloat(float64(x), 'g', -1, 32)
	y, err := strconv.ParseFloat(s, 64)
	if err != nil { // NaN and ±Inf format as "NaN", "+Inf", "-Inf", which parse
		return float64(x)
	}
	return y
}

// array returns the value of an array key, or an error naming what was
// expected.
func (f *File) array(key, expected string, elemOK func(ValueType) bool) (Value, error) {
	v, err := f.lookup(key)
	if err != nil {
		return Value{}, err
	}
	if v.Type != ARRAY || !elemOK(v.ElemType) {
		return Value{}, f.typeError(key, expected, v)
	}
	return v, nil
}

// Strings returns the value of an ARRAY of STRING key.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.array(key, "ARRAY of STRING", func(t ValueType) bool { return t == STRING })
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.Strs), nil
}

// Int32Array returns the value of an ARRAY of any integer type whose
// elements all fit an int32 (tokenizer.ggml.token_type, token ids).
func (f *File) Int32Array(key string) ([]int32, error) {
	v, err := f.array(key, "ARRAY of an integer type", ValueType.IsInteger)
	if err != nil {
		return nil, err
	}
	out := make([]int32, v.Len())
	for i := range out {
		var x int64
		ok := true
		if v.ElemType.IsSigned() {
			x = v.Ints[i]
		} else if v.Uints[i] <= math.MaxInt32 {
			x = int64(v.Uints[i])
		} else {
			ok = false
		}
		if !ok || x < math.MinInt32 || x > math.MaxInt32 {
			return nil, errorf(f.Path, keyWhere(key), "element %d: expected a value that fits int32, found %s",
				i, elemString(v, i))
		}
		out[i] = int32(x)
	}
	return out, nil
}

// Uint64Array returns the value of an ARRAY of any integer type whose
// elements are all non-negative.
func (f *File) Uint64Array(key string) ([]uint64, error) {
	v, err := f.array(key, "ARRAY of an integer type", ValueType.IsInteger)
	if err != nil {
		return nil, err
	}
	if !v.ElemType.IsSigned() {
		return slices.Clone(v.Uints), nil
	}
	out := make([]uint64, len(v.Ints))
	for i, x := range v.Ints {
		if x < 0 {
			return nil, errorf(f.Path, keyWhere(key), "element %d: expected a non-negative integer, found %d", i, x)
		}
		out[i] = uint64(x)
	}
	return out, nil
}

// Float64Array returns the value of an ARRAY of FLOAT32 or FLOAT64. FLOAT64
// elements are returned exactly; FLOAT32 elements as by Float (the shortest
// decimal that rounds to the stored float32).
func (f *File) Float64Array(key string) ([]float64, error) {
	v, err := f.array(key, "ARRAY of FLOAT32 or FLOAT64", ValueType.IsFloat)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(v.Floats)
	if v.ElemType == FLOAT32 {
		for i, x := range out {
			out[i] = ShortestFloat32(float32(x))
		}
	}
	return out, nil
}

func elemString(v Value, i int) string {
	if v.ElemType.IsSigned() {
		return strconv.FormatInt(v.Ints[i], 10)
	}
	return strconv.FormatUint(v.Uints[i], 10)
}

// intValue returns an integer value that is non-negative, or an error
// string describing what was found instead (for general.alignment).
func intValue(v Value) (uint64, error) {
	if !v.Type.IsInteger() {
		return 0, fmt.Errorf("%s", v.TypeName())
	}
	if v.Type.IsSigned() && v.Int < 0 {
		return 0, fmt.Errorf("%d", v.Int)
	}
	return intValueUnchecked(v), nil
}

func intValueUnchecked(v Value) uint64 {
	if v.Type.IsSigned() {
		return uint64(v.Int)
	}
	return v.Uint
}
