// Package gguf reads GGUF v3 files: the container of spec/format.md §1–5.
//
// It is the container layer (stage 1 of spec/format.md §9.2): it accepts any
// well-formed GGUF v3 file, whether a `llama` model or a goldens container
// (general.architecture = "gollm.goldens"), and checks its structure — every
// count, length, type, shape, offset and byte range — before anything is
// trusted. The `llama` profile (required keys, config, tensor set and shapes)
// is checked by the model package on top of the typed accessors here.
//
// A File keeps the file's bytes (memory-mapped where possible) and hands out
// tensor data as slices of them; call Close when done, and do not use slices
// returned by TensorData after Close. A File may be read from several
// goroutines at once, but not while it is being closed.
//
// Every error is a *FormatError, whose message names the file, the key or
// tensor involved, what was expected and what was found:
//
//	gguf: model.gguf: header: version: expected 3, found 2
//	gguf: model.gguf: key "llama.block_count": type: expected an integer, found STRING
//	gguf: model.gguf: tensor "blk.0.attn_q.weight": type: expected F32 (0), F16 (1), Q4_0 (2), … or BF16 (30), found IQ2_XXS (16)
package gguf

import (
	"fmt"
	"strconv"
)

// Value is one metadata value. Which fields are meaningful depends on Type:
//
//	UINT8, UINT16, UINT32, UINT64  Uint
//	INT8, INT16, INT32, INT64      Int
//	FLOAT32, FLOAT64               Float (a FLOAT32 widened exactly)
//	BOOL                           Bool
//	STRING                         Str
//	ARRAY                          ElemType and one slice, by ElemType:
//	                               Uints (unsigned integers), Ints (signed
//	                               integers), Floats, Bools or Strs
type Value struct {
	Type     ValueType
	ElemType ValueType // the element type, for Type == ARRAY

	Uint  uint64
	Int   int64
	Float float64
	Bool  bool
	Str   string

	Uints  []uint64
	Ints   []int64
	Floats []float64
	Bools  []bool
	Strs   []string
}

// Len returns the number of elements of an array value, and 0 for a scalar.
func (v Value) Len() int {
	if v.Type != ARRAY {
		return 0
	}
	switch {
	case v.ElemType == STRING:
		return len(v.Strs)
	case v.ElemType == BOOL:
		return len(v.Bools)
	case v.ElemType.IsFloat():
		return len(v.Floats)
	case v.ElemType.IsSigned():
		return len(v.Ints)
	default:
		return len(v.Uints)
	}
}

// TypeName describes the value's type for messages: "UINT32", "STRING",
// "ARRAY of INT32", ...
func (v Value) TypeName() string {
	if v.Type == ARRAY {
		return "ARRAY of " + v.ElemType.String()
	}
	return v.Type.String()
}

// String formats the value for humans; arrays longer than 8 elements are
// abbreviated.
func (v Value) String() string {
	switch {
	case v.Type == STRING:
		return strconv.Quote(v.Str)
	case v.Type == BOOL:
		return strconv.FormatBool(v.Bool)
	case v.Type.IsFloat():
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case v.Type.IsSigned():
		return strconv.FormatInt(v.Int, 10)
	case v.Type.IsInteger():
		return strconv.FormatUint(v.Uint, 10)
	case v.Type != ARRAY:
		return v.Type.String()
	}
	n := v.Len()
	s := "["
	for i := 0; i < n && i < 8; i++ {
		if i > 0 {
			s += " "
		}
		switch {
		case v.ElemType == STRING:
			s += strconv.Quote(v.Strs[i])
		case v.ElemType == BOOL:
			s += strconv.FormatBool(v.Bools[i])
		case v.ElemType.IsFloat():
			s += strconv.FormatFloat(v.Floats[i], 'g', -1, 64)
		case v.ElemType.IsSigned():
			s += strconv.FormatInt(v.Ints[i], 10)
		default:
			s += strconv.FormatUint(v.Uints[i], 10)
		}
	}
	if n > 8 {
		s += fmt.Sprintf(" … (%d elements)", n)
	}
	return s + "]"
}

// TensorInfo describes one tensor: its name, shape, type and where its data
// lies. Every TensorInfo of a File returned by Open or Parse has been checked:
// its data lies inside the file and overlaps no other tensor's.
type TensorInfo struct {
	Name   string
	Dims   []uint64   // GGUF order: Dims[0] = ne[0], the fastest-varying
	Type   TensorType // one of the Supported types
	Offset uint64     // of the data, relative to the data section
	Size   uint64     // of the data, in bytes
}

// Shape returns the row-major (numpy) shape: Dims reversed. For a matrix of
// out rows of in contiguous values, Dims is [in, out] and Shape is [out, in].
func (t *TensorInfo) Shape() []int {
	shape := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		shape[len(t.Dims)-1-i] = int(d)
	}
	return shape
}

// NumElements returns the number of values: the product of Dims.
func (t *TensorInfo) NumElements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// ShapeString formats Shape as numpy does, e.g. "(32, 64)" or "(64,)", for
// error messages (spec/format.md §9 writes shapes in numpy order).
func (t *TensorInfo) ShapeString() string {
	return FormatShape(t.Shape())
}

// FormatShape formats a row-major shape as numpy does: "(32, 64)", "(64,)".
func FormatShape(shape []int) string {
	s := "("
	for i, d := range shape {
		if i > 0 {
			s += ", "
		}
		s += strconv.Itoa(d)
	}
	if len(shape) == 1 {
		s += ","
	}
	return s + ")"
}

// File is a parsed GGUF file. Its exported fields must be treated as
// read-only.
type File struct {
	Path      string           // as given to Open or Parse
	Version   uint32           // always 3
	Alignment uint64           // general.alignment, or 32 if absent
	Keys      []string         // metadata keys in file order
	Metadata  map[string]Value // metadata by key
	Tensors   []TensorInfo     // tensor infos in file order

	data      []byte         // the whole file
	dataStart uint64         // offset of the data section in data
	index     map[string]int // tensor name -> index in Tensors
	unmap     func() error   // releases data when it is memory-mapped
}

// Tensor returns the tensor named name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// TensorData returns the raw bytes of t's data, little-endian as stored.
// Its bounds were checked when the file was parsed, so for a TensorInfo of
// this file it never fails; it returns nil for a TensorInfo whose range is
// not inside the file, and after Close. The slice aliases the file's bytes
// (possibly a read-only memory mapping): do not modify it, and do not use it
// after Close.
func (f *File) TensorData(t *TensorInfo) []byte {
	if t == nil || f.data == nil {
		return nil
	}
	start, ok := addOK(f.dataStart, t.Offset)
	if !ok {
		return nil
	}
	end, ok := addOK(start, t.Size)
	if !ok || end > uint64(len(f.data)) {
		return nil
	}
	return f.data[start:end:end]
}

// Size is the file's length in bytes (0 after Close): what a loader bounds
// the counts it reads by before it trusts them.
func (f *File) Size() int64 { return int64(len(f.data)) }

// DataStart returns the file offset of the data section: the end of the
// tensor infos rounded up to the alignment.
func (f *File) DataStart() uint64 { return f.dataStart }

// Close releases the file's bytes (unmapping them if they were mapped).
// Slices returned by TensorData must not be used afterwards. Close is safe to
// call more than once.
func (f *File) Close() error {
	f.data = nil
	if f.unmap != nil {
		unmap := f.unmap
		f.unmap = nil
		if err := unmap(); err != nil {
			return &FormatError{Path: f.Path, Msg: "close: " + err.Error(), Err: err}
		}
	}
	return nil
}
