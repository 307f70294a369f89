package gguf

import (
	"encoding/binary"
	"math"
)

// A minimal GGUF encoder for tests: it builds small files and records where
// each field lies, so that tests can corrupt exactly one field.

func le16(x uint16) []byte { return binary.LittleEndian.AppendUint16(nil, x) }
func le32(x uint32) []byte { return binary.LittleEndian.AppendUint32(nil, x) }
func le64(x uint64) []byte { return binary.LittleEndian.AppendUint64(nil, x) }

func encString(s string) []byte { return append(le64(uint64(len(s))), s...) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// testKV is one metadata pair: the value type and the encoded value that
// follows it.
type testKV struct {
	key string
	typ ValueType
	val []byte
}

func kvU32(key string, x uint32) testKV              { return testKV{key, UINT32, le32(x)} }
func kvI32(key string, x int32) testKV               { return testKV{key, INT32, le32(uint32(x))} }
func kvU64(key string, x uint64) testKV              { return testKV{key, UINT64, le64(x)} }
func kvF32(key string, x float32) testKV             { return testKV{key, FLOAT32, le32(math.Float32bits(x))} }
func kvF64(key string, x float64) testKV             { return testKV{key, FLOAT64, le64(math.Float64bits(x))} }
func kvString(key, s string) testKV                  { return testKV{key, STRING, encString(s)} }
func kvBool(key string, b byte) testKV               { return testKV{key, BOOL, []byte{b}} }
func kvU8(key string, x uint8) testKV                { return testKV{key, UINT8, []byte{x}} }
func kvI8(key string, x int8) testKV                 { return testKV{key, INT8, []byte{byte(x)}} }
func kvI16(key string, x int16) testKV               { return testKV{key, INT16, le16(uint16(x))} }
func kvU16(key string, x uint16) testKV              { return testKV{key, UINT16, le16(x)} }
func kvI64(key string, x int64) testKV               { return testKV{key, INT64, le64(uint64(x))} }
func kvRaw(key string, t ValueType, v []byte) testKV { return testKV{key, t, v} }

// kvArray encodes an array of n elements of type elem, given their bytes.
func kvArray(key string, elem ValueType, n uint64, elems []byte) testKV {
	return testKV{key, ARRAY, cat(le32(uint32(elem)), le64(n), elems)}
}

func kvStrings(key string, ss ...string) testKV {
	var elems []byte
	for _, s := range ss {
		elems = append(elems, encString(s)...)
	}
	return kvArray(key, STRING, uint64(len(ss)), elems)
}

// testTensor is one tensor: its info and data. With fixedOffset set, offset
// is written as given; otherwise tensors are laid out as ggml does, in order,
// each at the next multiple of the alignment.
type testTensor struct {
	name        string
	dims        []uint64
	typ         TensorType
	data        []byte
	offset      uint64
	fixedOffset bool
}

func f32Bytes(xs ...float32) []byte {
	var out []byte
	for _, x := range xs {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
	}
	return out
}

// testFile describes a GGUF file to encode.
type testFile struct {
	version   uint32 // 0 means 3
	kvs       []testKV
	tensors   []testTensor
	alignment uint64 // for the layout; 0 means 32 (set general.alignment yourself)
	noPad     bool   // omit the padding after the tensor infos (for files without tensors)
}

// testLayout records the byte position of each field of an encoded file.
type testLayout struct {
	keyLen, valueType                           []int // per key/value
	nameLen, nDims, dims, tensorType, tensorOff []int // per tensor info
	dataStart                                   int
}

func (tf testFile) encode() ([]byte, testLayout) {
	var l testLayout
	version := tf.version
	if version == 0 {
		version = 3
	}
	align := tf.alignment
	if align == 0 {
		align = 32
	}
	b := cat([]byte("GGUF"), le32(version), le64(uint64(len(tf.tensors))), le64(uint64(len(tf.kvs))))
	for _, kv := range tf.kvs {
		l.keyLen = append(l.keyLen, len(b))
		b = append(b, encString(kv.key)...)
		l.valueType = append(l.valueType, len(b))
		b = append(b, le32(uint32(kv.typ))...)
		b = append(b, kv.val...)
	}
	offsets := make([]uint64, len(tf.tensors))
	next := uint64(0)
	for i, t := range tf.tensors {
		offsets[i] = next
		if t.fixedOffset {
			offsets[i] = t.offset
		}
		next = (offsets[i] + uint64(len(t.data)) + align - 1) / align * align
	}
	for i, t := range tf.tensors {
		l.nameLen = append(l.nameLen, len(b))
		b = append(b, encString(t.name)...)
		l.nDims = append(l.nDims, len(b))
		b = append(b, le32(uint32(len(t.dims)))...)
		l.dims = append(l.dims, len(b))
		for _, d := range t.dims {
			b = append(b, le64(d)...)
		}
		l.tensorType = append(l.tensorType, len(b))
		b = append(b, le32(uint32(t.typ))...)
		l.tensorOff = append(l.tensorOff, len(b))
		b = append(b, le64(offsets[i])...)
	}
	for !tf.noPad && uint64(len(b))%align != 0 {
		b = append(b, 0)
	}
	l.dataStart = len(b)
	for i, t := range tf.tensors {
		if t.fixedOffset && offsets[i] > 1<<20 {
			continue // an offset far outside the file, for error tests
		}
		end := l.dataStart + int(offsets[i]) + len(t.data)
		for len(b) < end {
			b = append(b, 0)
		}
		copy(b[l.dataStart+int(offsets[i]):], t.data)
	}
	return b, l
}
