package gguf

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Version is the only GGUF version this package reads.
const Version = 3

// DefaultAlignment is the alignment of the data section and of each tensor's
// data when general.alignment is absent.
const DefaultAlignment = 32

// AlignmentKey is the metadata key that overrides DefaultAlignment.
const AlignmentKey = "general.alignment"

const (
	headerSize        = 24
	minKVSize         = 13 // 8 key length + 4 type + 1 value
	minTensorInfoSize = 32 // 8 name length + 4 n_dims + 8 ne[0] + 4 type + 8 offset
	maxDims           = 4
)

// Parse parses a GGUF v3 file held in data and checks its whole container
// structure (spec/format.md §9.1 and stage 1 of §9.2), in the spec's order.
// path is used only in error messages. The returned File keeps data and
// returns tensor data as slices of it, so data must not be modified while
// the File is in use. Every error is a *FormatError.
func Parse(data []byte, path string) (*File, error) {
	d := &decoder{data: data, path: path, where: "header"}
	f := &File{Path: path, data: data}
	if err := d.header(f); err != nil {
		return nil, err
	}
	nTensors, nKV := d.u64At(8), d.u64At(16)
	if err := d.checkCounts(nTensors, nKV); err != nil {
		return nil, err
	}
	if err := d.metadata(f, nKV); err != nil {
		return nil, err
	}
	if err := d.alignment(f); err != nil {
		return nil, err
	}
	if err := d.tensorInfos(f, nTensors); err != nil {
		return nil, err
	}
	// The data section starts at the end of the tensor infos, rounded up to
	// the alignment. off ≤ len(data) and Alignment ≤ 2^63, so this cannot
	// overflow.
	f.dataStart = alignUp(d.off, f.Alignment)
	if err := d.tensorRanges(f); err != nil {
		return nil, err
	}
	return f, nil
}

// decoder reads little-endian fields from data, starting at off, and checks
// every length against the bytes that remain before trusting it.
type decoder struct {
	data  []byte
	off   uint64 // ≤ len(data) at all times
	path  string
	where string // for errors: "header", `key "…"`, `tensor "…"`, …
}

func (d *decoder) errorf(format string, args ...any) error {
	return errorf(d.path, d.where, format, args...)
}

func (d *decoder) remaining() uint64 { return uint64(len(d.data)) - d.off }

func (d *decoder) u64At(off int) uint64 { return binary.LittleEndian.Uint64(d.data[off:]) }

// need fails unless n more bytes remain; what names the field for the error.
func (d *decoder) need(n uint64, what string) error {
	if n > d.remaining() {
		return d.errorf("%s at byte %d: needs %d bytes, but the file ends after %d (truncated?)",
			what, d.off, n, d.remaining())
	}
	return nil
}

func (d *decoder) bytes(n uint64) []byte {
	b := d.data[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.need(4, what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(d.bytes(4)), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.need(8, what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(d.bytes(8)), nil
}

// str reads a length-prefixed UTF-8 string (spec/format.md §2).
func (d *decoder) str(what string) (string, error) {
	start := d.off
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > d.remaining() {
		return "", d.errorf("%s at byte %d: length %d runs past the end of the file (%d bytes remain)",
			what, start, n, d.remaining())
	}
	b := d.bytes(n)
	if !utf8.Valid(b) {
		return "", d.errorf("%s at byte %d: not valid UTF-8: %q", what, start, truncateBytes(b, 64))
	}
	return string(b), nil
}

func truncateBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func (d *decoder) header(f *File) error {
	if len(d.data) < headerSize {
		return d.errorf("file has %d bytes, expected at least %d (a GGUF header)", len(d.data), headerSize)
	}
	if magic := d.data[:4]; string(magic) != Magic {
		return d.errorf("magic: expected %q (47 47 55 46), found % x", Magic, magic)
	}
	version := binary.LittleEndian.Uint32(d.data[4:])
	if version != Version {
		if version&0xFFFF == 0 {
			return d.errorf("version: expected %d, found %d (0x%08x): the file looks big-endian, which is not supported",
				Version, version, version)
		}
		return d.errorf("version: expected %d, found %d", Version, version)
	}
	f.Version = version
	d.off = headerSize
	return nil
}

// checkCounts rejects counts that cannot fit in the rest of the file, before
// anything is allocated or looped over (spec/format.md §9.1).
func (d *decoder) checkCounts(nTensors, nKV uint64) error {
	rem := d.remaining()
	if nTensors > rem/minTensorInfoSize {
		return d.errorf("tensor_count %d cannot fit in the %d bytes that remain", nTensors, rem)
	}
	if nKV > rem/minKVSize {
		return d.errorf("metadata_kv_count %d cannot fit in the %d bytes that remain", nKV, rem)
	}
	// Both products are ≤ rem now, so their sum cannot overflow.
	if need := minKVSize*nKV + minTensorInfoSize*nTensors; need > rem {
		return d.errorf("metadata_kv_count %d and tensor_count %d need at least %d bytes, but %d remain",
			nKV, nTensors, need, rem)
	}
	return nil
}

func (d *decoder) metadata(f *File, nKV uint64) error {
	// nKV ≤ len(data)/13 here, so these allocations are bounded by the file.
	f.Keys = make([]string, 0, nKV)
	f.Metadata = make(map[string]Value, nKV)
	for i := range nKV {
		d.where = kvIndexWhere(i)
		key, err := d.str("key")
		if err != nil {
			return err
		}
		d.where = keyWhere(key)
		v, err := d.value()
		if err != nil {
			return err
		}
		if _, dup := f.Metadata[key]; dup {
			return d.errorf("duplicate key (key/value %d repeats an earlier key)", i)
		}
		f.Keys = append(f.Keys, key)
		f.Metadata[key] = v
	}
	return nil
}

func (d *decoder) value() (Value, error) {
	t, err := d.u32("value type")
	if err != nil {
		return Value{}, err
	}
	if !ValueType(t).Valid() {
		return Value{}, d.errorf("value type: expected 0..12, found %d", t)
	}
	v := Value{Type: ValueType(t)}
	if v.Type != ARRAY {
		err := d.scalar(&v, v.Type, "value")
		return v, err
	}
	et, err := d.u32("array element type")
	if err != nil {
		return Value{}, err
	}
	v.ElemType = ValueType(et)
	if v.ElemType == ARRAY {
		return Value{}, d.errorf("array element type: nested arrays are not supported")
	}
	if !v.ElemType.Valid() {
		return Value{}, d.errorf("array element type: expected 0..12 except 9 (ARRAY), found %d", et)
	}
	start := d.off
	n, err := d.u64("array length")
	if err != nil {
		return Value{}, err
	}
	size := v.ElemType.fixedSize()
	if size == 0 {
		size = 8 // a string takes at least its 8-byte length
	}
	if n > d.remaining()/size {
		return Value{}, d.errorf("array of %d %s at byte %d runs past the end of the file (%d bytes remain)",
			n, v.ElemType, start, d.remaining())
	}
	return v, d.array(&v, n)
}

// scalar reads one value of type t (not ARRAY) into v's scalar fields.
func (d *decoder) scalar(v *Value, t ValueType, what string) error {
	if t == STRING {
		s, err := d.str(what)
		v.Str = s
		return err
	}
	size := t.fixedSize()
	if err := d.need(size, what+" ("+t.String()+")"); err != nil {
		return err
	}
	b := d.bytes(size)
	switch t {
	case UINT8:
		v.Uint = uint64(b[0])
	case INT8:
		v.Int = int64(int8(b[0]))
	case UINT16:
		v.Uint = uint64(binary.LittleEndian.Uint16(b))
	case INT16:
		v.Int = int64(int16(binary.LittleEndian.Uint16(b)))
	case UINT32:
		v.Uint = uint64(binary.LittleEndian.Uint32(b))
	case INT32:
		v.Int = int64(int32(binary.LittleEndian.Uint32(b)))
	case UINT64:
		v.Uint = binary.LittleEndian.Uint64(b)
	case INT64:
		v.Int = int64(binary.LittleEndian.Uint64(b))
	case FLOAT32:
		v.Float = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	case FLOAT64:
		v.Float = math.Float64frombits(binary.LittleEndian.Uint64(b))
	case BOOL:
		if b[0] > 1 {
			return d.errorf("%s: BOOL must be 0 or 1, found %d", what, b[0])
		}
		v.Bool = b[0] == 1
	}
	return nil
}

// array reads n elements of v.ElemType; n has been checked against the
// bytes that remain, so the allocations below are bounded by the file size.
func (d *decoder) array(v *Value, n uint64) error {
	et := v.ElemType
	switch {
	case et == STRING:
		v.Strs = make([]string, n)
	case et == BOOL:
		v.Bools = make([]bool, n)
	case et.IsFloat():
		v.Floats = make([]float64, n)
	case et.IsSigned():
		v.Ints = make([]int64, n)
	default:
		v.Uints = make([]uint64, n)
	}
	var elem Value
	for i := range n {
		if err := d.scalar(&elem, et, "array element "+itoa(i)); err != nil {
			return err
		}
		switch {
		case et == STRING:
			v.Strs[i] = elem.Str
		case et == BOOL:
			v.Bools[i] = elem.Bool
		case et.IsFloat():
			v.Floats[i] = elem.Float
		case et.IsSigned():
			v.Ints[i] = elem.Int
		default:
			v.Uints[i] = elem.Uint
		}
	}
	return nil
}

func itoa(i uint64) string {
	var buf [20]byte
	n := len(buf)
	for {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(buf[n:])
		}
	}
}

// alignment sets f.Alignment from general.alignment (spec/format.md §5.2).
func (d *decoder) alignment(f *File) error {
	f.Alignment = DefaultAlignment
	v, ok := f.Metadata[AlignmentKey]
	if !ok {
		return nil
	}
	d.where = keyWhere(AlignmentKey)
	a, err := intValue(v)
	if err != nil {
		return d.errorf("expected a non-zero power of two (an integer), found %s", err.Error())
	}
	if a == 0 || a&(a-1) != 0 {
		return d.errorf("expected a non-zero power of two, found %d", a)
	}
	f.Alignment = a
	return nil
}

func (d *decoder) tensorInfos(f *File, nTensors uint64) error {
	// nTensors ≤ len(data)/32 here, so these allocations are bounded.
	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.index = make(map[string]int, nTensors)
	for i := range nTensors {
		d.where = tensorIndexWhere(i)
		name, err := d.str("name")
		if err != nil {
			return err
		}
		d.where = tensorWhere(name)
		if j, dup := f.index[name]; dup {
			return d.errorf("duplicate tensor name (tensor infos %d and %d)", j, i)
		}
		t := TensorInfo{Name: name}
		if err := d.tensorInfo(&t); err != nil {
			return err
		}
		f.index[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	return nil
}

func (d *decoder) tensorInfo(t *TensorInfo) error {
	nDims, err := d.u32("n_dims")
	if err != nil {
		return err
	}
	if nDims < 1 || nDims > maxDims {
		return d.errorf("n_dims: expected 1..%d, found %d", maxDims, nDims)
	}
	t.Dims = make([]uint64, nDims)
	n := uint64(1)
	for i := range t.Dims {
		dim, err := d.u64("ne[" + itoa(uint64(i)) + "]")
		if err != nil {
			return err
		}
		if dim == 0 {
			return d.errorf("ne[%d]: expected a dimension > 0, found 0", i)
		}
		t.Dims[i] = dim
		hi, lo := bits.Mul64(n, dim)
		if hi != 0 {
			return d.errorf("dimensions %v: the number of elements overflows 64 bits", t.Dims[:i+1])
		}
		n = lo
	}
	typ, err := d.u32("type")
	if err != nil {
		return err
	}
	t.Type = TensorType(typ)
	if !t.Type.Supported() {
		return d.errorf("type: expected %s, found %s (%d)", supportedTypes, t.Type, typ)
	}
	if values := uint64(t.Type.BlockValues()); t.Dims[0]%values != 0 { // blocks run along ne[0]
		return d.errorf("%s needs ne[0] to be a multiple of %d, found ne = %v", t.Type, values, t.Dims)
	}
	size, ok := t.Type.ByteSize(n)
	if !ok {
		return d.errorf("%d %s values: the byte size overflows 64 bits", n, t.Type)
	}
	t.Size = size
	t.Offset, err = d.u64("offset")
	return err
}

// tensorRanges checks that each tensor's data is aligned, lies inside the
// file and overlaps no other tensor's (spec/format.md §9.2, checks 13–15).
func (d *decoder) tensorRanges(f *File) error {
	fileSize := uint64(len(d.data))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		d.where = tensorWhere(t.Name)
		if t.Offset%f.Alignment != 0 {
			return d.errorf("offset: expected a multiple of the alignment %d, found %d", f.Alignment, t.Offset)
		}
		start, ok1 := addOK(f.dataStart, t.Offset)
		end, ok2 := addOK(start, t.Size)
		if !ok1 || !ok2 || end > fileSize {
			return d.errorf("data (offset %d, %d bytes, from byte %d of the file) extends past the end of the file (%d bytes; truncated?)",
				t.Offset, t.Size, f.dataStart, fileSize)
		}
	}
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		oa, ob := f.Tensors[a].Offset, f.Tensors[b].Offset
		switch {
		case oa < ob:
			return -1
		case oa > ob:
			return 1
		}
		return a - b
	})
	for k := 1; k < len(order); k++ {
		prev, t := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if t.Offset < prev.Offset+prev.Size { // in bounds, so no overflow
			d.where = tensorWhere(t.Name)
			return d.errorf("data [%d, %d) overlaps tensor %q's data [%d, %d)",
				t.Offset, t.Offset+t.Size, prev.Name, prev.Offset, prev.Offset+prev.Size)
		}
	}
	return nil
}

func addOK(a, b uint64) (uint64, bool) {
	s, carry := bits.Add64(a, b, 0)
	return s, carry == 0
}

// alignUp rounds x up to a multiple of a, a power of two; the caller ensures
// no overflow.
func alignUp(x, a uint64) uint64 { return (x + a - 1) &^ (a - 1) }
