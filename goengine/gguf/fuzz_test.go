package gguf

import (
	"os"
	"testing"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts is
// safe to use: every tensor's data lies inside the input, no two overlap,
// and every accessor works without panicking.
//
//	go test -run XXX -fuzz=FuzzParse -fuzztime=60s ./gguf/
//
// The golden model seed is large, so minimizing each new interesting input
// takes long (the fuzzer then reports 0 execs/sec); -fuzzminimizetime=2s
// keeps the fuzzer exploring.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"gqa.gguf", "sampler.gguf"} {
		if data, err := os.ReadFile(goldenPath(name)); err == nil {
			f.Add(data)
		}
	}
	base, _ := baseFile().encode()
	f.Add(base)
	q8, _ := testFile{
		kvs:     []testKV{kvU32("general.alignment", 64), kvArray("u8", UINT8, 3, []byte{1, 2, 3}), kvF32("f", 1)},
		tensors: []testTensor{{name: "w", dims: []uint64{32, 1}, typ: Q8_0, data: make([]byte, 34)}, {name: "h", dims: []uint64{2}, typ: F16, data: make([]byte, 4)}},
	}.encode()
	f.Add(q8)
	ids, _ := testFile{tensors: []testTensor{{name: "ids", dims: []uint64{2, 1, 1, 1}, typ: I32, data: make([]byte, 8)}}}.encode()
	f.Add(ids)
	f.Add([]byte("GGUF\x03\x00\x00\x00"))

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data, "fuzz.gguf")
		if err != nil {
			if file != nil {
				t.Fatal("Parse returned both a File and an error")
			}
			if _, ok := err.(*FormatError); !ok {
				t.Fatalf("error %T is not a *FormatError", err)
			}
			return
		}
		if file.Alignment == 0 || file.Alignment&(file.Alignment-1) != 0 || len(file.Keys) != len(file.Metadata) {
			t.Fatalf("bad alignment %d or keys", file.Alignment)
		}
		for _, key := range file.Keys {
			v := file.Metadata[key]
			_ = v.String()
			file.Uint(key)
			file.Float(key)
			file.Strings(key)
			file.Int32Array(key)
			file.Uint64Array(key)
			file.Float64Array(key)
		}
		for i := range file.Tensors {
			ti := &file.Tensors[i]
			start := file.DataStart() + ti.Offset
			if start < file.DataStart() || start+ti.Size < start || start+ti.Size > uint64(len(data)) {
				t.Fatalf("tensor %q: data [%d, +%d) outside the %d-byte input", ti.Name, start, ti.Size, len(data))
			}
			if got := file.TensorData(ti); uint64(len(got)) != ti.Size {
				t.Fatalf("tensor %q: TensorData has %d bytes, want %d", ti.Name, len(got), ti.Size)
			}
			if size, ok := ti.Type.ByteSize(ti.NumElements()); !ok || size != ti.Size {
				t.Fatalf("tensor %q: size %d does not match its shape", ti.Name, ti.Size)
			}
			for j := range i {
				o := &file.Tensors[j]
				if ti.Offset < o.Offset+o.Size && o.Offset < ti.Offset+ti.Size {
					t.Fatalf("tensors %q and %q overlap", ti.Name, o.Name)
				}
			}
			if ti.Type == I32 {
				if _, err := file.Int32s(ti.Name); err != nil {
					t.Fatal(err)
				}
			} else if _, err := file.Float32s(ti.Name); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func BenchmarkParseGQA(b *testing.B) {
	data, err := os.ReadFile(goldenPath("gqa.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer() // set-up is not timed
	for range b.N {
		if _, err := Parse(data, "gqa.gguf"); err != nil {
			b.Fatal(err)
		}
	}
}
