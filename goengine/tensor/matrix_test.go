package tensor

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

// TestNewMatrixViewsAlignedDataAndCopiesTheRest: an aligned F32 matrix is the
// file's bytes (a change to them shows), a misaligned one is a correct copy.
func TestNewMatrixViewsAlignedDataAndCopiesTheRest(t *testing.T) {
	values := []float32{1.5, -2, 3.25, 0, 7, -0.5}
	buf := make([]byte, 1+4*len(values)+8) // room to misalign by one byte
	for _, offset := range []int{0, 1} {
		data := buf[offset : offset+4*len(values)]
		for i, v := range values {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		m, err := NewMatrix(2, 3, F32, data)
		if err != nil {
			t.Fatal(err)
		}
		row := make([]float32, 3)
		m.Row(row, 1)
		if row[0] != 0 || row[1] != 7 || row[2] != -0.5 {
			t.Errorf("offset %d: row 1 = %v", offset, row)
		}
		binary.LittleEndian.PutUint32(data, math.Float32bits(42))
		if aligned := offset == 0; (m.F32[0] == 42) != aligned {
			t.Errorf("offset %d: F32[0] = %v after the bytes changed; a view must follow them, a copy must not", offset, m.F32[0])
		}
	}
}

func TestNewMatrixRowsOfEachType(t *testing.T) {
	// F16: 1, -2 and 0.5 are exact; Q8_0: d = 0.5 (0x3800), q = 0..31.
	f16 := []byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0x00, 0x00}
	m, err := NewMatrix(2, 2, F16, f16)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, 2)
	if m.Row(row, 0); row[0] != 1 || row[1] != -2 {
		t.Errorf("F16 row 0 = %v", row)
	}
	q8 := []byte{0x00, 0x38}
	for i := range 32 {
		q8 = append(q8, byte(int8(i-16)))
	}
	if m, err = NewMatrix(1, 32, Q8_0, q8); err != nil {
		t.Fatal(err)
	}
	row = make([]float32, 32)
	m.Row(row, 0)
	for i, v := range row {
		if v != 0.5*float32(i-16) {
			t.Fatalf("Q8_0 value %d = %v, want %v", i, v, 0.5*float32(i-16))
		}
	}
	if m.ByteSize() != 34 {
		t.Errorf("Q8_0 ByteSize = %d, want 34", m.ByteSize())
	}
}

func TestNewMatrixErrors(t *testing.T) {
	for _, c := range []struct {
		rows, cols int
		typ        DType
		bytes      int
		want       string
	}{
		{2, 3, F32, 20, "needs 24 bytes, got 20"},
		{2, 3, F16, 24, "needs 12 bytes, got 24"},
		{1, 48, Q8_0, 51, "whole blocks of 32 values; 48 columns are not"},
		{2, 32, Q8_0, 34, "needs 68 bytes, got 34"},
	} {
		if _, err := NewMatrix(c.rows, c.cols, c.typ, make([]byte, c.bytes)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("(%d, %d) %s in %d bytes: err = %v, want %q", c.rows, c.cols, c.typ, c.bytes, err, c.want)
		}
	}
}
