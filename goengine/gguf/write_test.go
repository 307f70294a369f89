package gguf

import (
	"bytes"
	"math"
	"testing"
)

func TestWriteThenParseRoundTrips(t *testing.T) {
	values := []float32{1, -2, 0.5, 3.25, 0, -0.125}
	meta := []KV{
		{"general.architecture", Value{Type: STRING, Str: "llama"}},
		{"llama.block_count", Value{Type: UINT32, Uint: 7}},
		{"llama.rope.freq_base", Value{Type: FLOAT32, Float: 10000}},
		{"tokenizer.ggml.tokens", Value{Type: ARRAY, ElemType: STRING, Strs: []string{"a", "bc"}}},
	}
	q8 := make([]float32, 64)
	for i := range q8 {
		q8[i] = float32(i-32) / 8
	}
	var tensors []TensorToWrite
	for _, c := range []struct {
		typ    TensorType
		values []float32
		shape  []int
	}{{F32, values, []int{2, 3}}, {F16, values, []int{6}}, {Q8_0, q8, []int{2, 32}}} {
		data, err := Quantize(c.values, c.typ)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, TensorToWrite{Name: "t." + c.typ.String(), Shape: c.shape, Type: c.typ, Data: data})
	}
	var buf bytes.Buffer
	if err := Write(&buf, meta, tensors); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes(), "mem.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := f.Uint("llama.block_count"); n != 7 {
		t.Errorf("block_count = %d", n)
	}
	if toks, _ := f.Strings("tokenizer.ggml.tokens"); len(toks) != 2 || toks[1] != "bc" {
		t.Errorf("tokens = %q", toks)
	}
	for _, typ := range []TensorType{F32, F16} { // these values are exact in both
		got, err := f.Float32s("t." + typ.String())
		if err != nil || len(got) != len(values) {
			t.Fatalf("%s: %v %v", typ, got, err)
		}
		for i := range got {
			if got[i] != values[i] {
				t.Errorf("%s[%d] = %v, want %v", typ, i, got[i], values[i])
			}
		}
	}
	info, _ := f.Tensor("t.F32")
	if shape := info.Shape(); shape[0] != 2 || shape[1] != 3 {
		t.Errorf("shape %v, want [2 3]", shape)
	}
	got, _ := f.Float32s("t.Q8_0")
	for i := range got { // max|x| = 4 per block: d = 4/127, error at most d/2
		if math.Abs(float64(got[i]-q8[i])) > 2.0/127+1e-6 {
			t.Errorf("Q8_0[%d] = %v, want %v within d/2", i, got[i], q8[i])
		}
	}
}

func TestWriteRejectsWrongDataSize(t *testing.T) {
	err := Write(&bytes.Buffer{}, nil, []TensorToWrite{{Name: "x", Shape: []int{3}, Type: F32, Data: make([]byte, 8)}})
	if err == nil {
		t.Fatal("3 F32 values in 8 bytes were accepted")
	}
}

// TestFloat32ToFloat16 checks every half value round trips, and that values
// just below, at and above each midpoint between neighbouring halves round to
// the nearer one, ties to the even one.
func TestFloat32ToFloat16(t *testing.T) {
	for h := 0; h < 0x10000; h++ {
		f := Float16ToFloat32(uint16(h))
		got := Float32ToFloat16(f)
		if math.IsNaN(float64(f)) {
			if !math.IsNaN(float64(Float16ToFloat32(got))) {
				t.Fatalf("NaN %#04x became %#04x", h, got)
			}
			continue
		}
		if got != uint16(h) {
			t.Fatalf("%#04x (%v) round-tripped to %#04x", h, f, got)
		}
	}
	for h := uint16(0); h < 0x7bff; h++ { // positive finite halves and their upper neighbour
		lo, hi := float64(Float16ToFloat32(h)), float64(Float16ToFloat32(h+1))
		mid := float32((lo + hi) / 2) // exact: halves have 11 significant bits
		even := h
		if h&1 == 1 {
			even = h + 1
		}
		below, above := math.Nextafter32(mid, 0), math.Nextafter32(mid, 1e9)
		if got := Float32ToFloat16(below); got != h {
			t.Fatalf("just below the midpoint of %#04x and its neighbour: got %#04x", h, got)
		}
		if got := Float32ToFloat16(mid); got != even {
			t.Fatalf("midpoint of %#04x and %#04x: got %#04x, want the even %#04x", h, h+1, got, even)
		}
		if got := Float32ToFloat16(above); got != h+1 {
			t.Fatalf("just above the midpoint of %#04x: got %#04x", h, got)
		}
		if got := Float32ToFloat16(-mid); got != 0x8000|even {
			t.Fatalf("negative midpoint of %#04x: got %#04x", h, got)
		}
	}
	if got := Float32ToFloat16(70000); got != 0x7c00 {
		t.Errorf("70000 -> %#04x, want +inf", got)
	}
}
