package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"gollm/goengine/gguf"
)

// DType is how a weight matrix's values are stored (spec/format.md §5).
type DType uint8

const (
	F32    DType = iota // float32
	F16                 // IEEE half float, widened on the fly
	Q8_0                // blocks of 32 int8 values and one F16 scale
	Blocks              // another of ggml's types (Matrix.Quant: Q4_0 … Q6_K, BF16), decoded a block at a time
)

func (t DType) String() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case Q8_0:
		return "Q8_0"
	case Blocks:
		return "Blocks"
	}
	return fmt.Sprintf("DType(%d)", uint8(t))
}

// Matrix is a row-major weight matrix of shape (Rows, Cols) in its storage type.
// Exactly one of the data slices is set; for a loaded model it is a view of the
// memory-mapped file, so loading copies nothing.
//
// F32, F16 and Q8_0 have kernels of their own. Every other ggml type is a
// Blocks matrix. A prompt's products decode its rows with
// gguf.DequantizeBlocks, ggml's exact dequantization (spec/format.md §5.3),
// and multiply them with the float32 activations; a decode product (a few
// tokens), of Q8_0 and Blocks matrices alike, quantizes the activations as
// llama.cpp does and multiplies quants by quants in integers (blocks.go,
// spec/model.md §11).
type Matrix struct {
	Rows, Cols int
	Type       DType
	Quant      gguf.TensorType // the ggml type of a Blocks matrix
	F32        []float32       // Rows*Cols values
	F16        []uint16        // Rows*Cols values
	Q8         []byte          // Rows*Cols/32 blocks of Q8BlockBytes
	Data       []byte          // a Blocks matrix's blocks, Rows*Cols/Quant.BlockValues() of Quant.BlockBytes()
}

// FromGGUF views data, the bytes of a (rows, cols) tensor of ggml type typ as
// a GGUF file stores them, as a Matrix: F32, F16 and Q8_0 as NewMatrix does,
// every other type gguf supports as a Blocks matrix, whose rows must be whole
// blocks (256 values for the K-quants, 32 for Q4_0 … Q5_1).
func FromGGUF(rows, cols int, typ gguf.TensorType, data []byte) (Matrix, error) {
	switch typ {
	case gguf.F32:
		return NewMatrix(rows, cols, F32, data)
	case gguf.F16:
		return NewMatrix(rows, cols, F16, data)
	case gguf.Q8_0:
		return NewMatrix(rows, cols, Q8_0, data)
	}
	if !typ.Supported() || typ == gguf.I32 {
		return Matrix{}, fmt.Errorf("%s is not a weight type", typ)
	}
	m := Matrix{Rows: rows, Cols: cols, Type: Blocks, Quant: typ, Data: data}
	if per := typ.BlockValues(); cols%per != 0 {
		return Matrix{}, fmt.Errorf("a %s matrix's rows are whole blocks of %d values; %d columns are not", typ, per, cols)
	}
	if want := m.ByteSize(); int64(len(data)) != want {
		return Matrix{}, fmt.Errorf("a (%d, %d) %s matrix needs %d bytes, got %d", rows, cols, typ, want, len(data))
	}
	return m, nil
}

// NewMatrix views data, the little-endian bytes of a (rows, cols) matrix of
// type typ, as a Matrix. On a little-endian machine with data aligned for the
// type it is a view; otherwise the values are copied into native order.
func NewMatrix(rows, cols int, typ DType, data []byte) (Matrix, error) {
	m := Matrix{Rows: rows, Cols: cols, Type: typ}
	n := rows * cols
	if typ == Q8_0 && cols%Q8BlockSize != 0 {
		return Matrix{}, fmt.Errorf("a Q8_0 matrix's rows are whole blocks of %d values; %d columns are not", Q8BlockSize, cols)
	}
	if want := m.ByteSize(); int64(len(data)) != want {
		return Matrix{}, fmt.Errorf("a (%d, %d) %s matrix needs %d bytes, got %d", rows, cols, typ, want, len(data))
	}
	switch typ {
	case F32:
		m.F32 = viewOrCopy(data, n, math.Float32frombits, binary.LittleEndian.Uint32)
	case F16:
		m.F16 = viewOrCopy(data, n, func(v uint16) uint16 { return v }, binary.LittleEndian.Uint16)
	case Q8_0:
		m.Q8 = data // bytes need neither alignment nor byte order
	}
	return m, nil
}

// viewOrCopy reinterprets data as n values of E when the machine is
// little-endian and data is aligned for E, and decodes a copy otherwise.
func viewOrCopy[E, U uint16 | uint32 | float32](data []byte, n int, conv func(U) E, read func([]byte) U) []E {
	if n == 0 {
		return []E{}
	}
	size := int(unsafe.Sizeof(*new(E)))
	if littleEndian && uintptr(unsafe.Pointer(&data[0]))%uintptr(size) == 0 {
		return unsafe.Slice((*E)(unsafe.Pointer(&data[0])), n)
	}
	out := make([]E, n)
	for i := range out {
		out[i] = conv(read(data[i*size:]))
	}
	return out
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// ByteSize is the size of the matrix's data in its storage type.
func (m *Matrix) ByteSize() int64 {
	n := int64(m.Rows) * int64(m.Cols)
	switch m.Type {
	case F16:
		return 2 * n
	case Q8_0:
		return n / Q8BlockSize * Q8BlockBytes
	case Blocks:
		return n / int64(m.Quant.BlockValues()) * int64(m.Quant.BlockBytes())
	}
	return 4 * n
}

// Row widens row r to float32 into dst (len Cols): the embedding lookup.
func (m *Matrix) Row(dst []float32, r int) {
	c := m.Cols
	switch m.Type {
	case F32:
		copy(dst, m.F32[r*c:(r+1)*c])
	case F16:
		DequantizeF16Row(dst[:c], m.F16[r*c:(r+1)*c])
	case Q8_0:
		rowBytes := c / Q8BlockSize * Q8BlockBytes
		DequantizeQ8Row(dst[:c], m.Q8[r*rowBytes:(r+1)*rowBytes])
	case Blocks:
		gguf.DequantizeBlocks(m.Quant, dst[:c], m.blocksRow(r))
	}
}

// blocksRow is row r's blocks of a Blocks matrix.
func (m *Matrix) blocksRow(r int) []byte {
	rowBytes := m.Cols / m.Quant.BlockValues() * m.Quant.BlockBytes()
	return m.Data[r*rowBytes : (r+1)*rowBytes]
}

// q8Row is row r's blocks of a Q8_0 matrix.
func (m *Matrix) q8Row(r int) []byte {
	rowBytes := m.Cols / Q8BlockSize * Q8BlockBytes
	return m.Q8[r*rowBytes : (r+1)*rowBytes]
}
