package gguf

import (
	"encoding/binary"
	"math"
	"os"
	"slices"
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
	kq, _ := testFile{tensors: []testTensor{
		{name: "k", dims: []uint64{256, 1}, typ: Q4_K, data: make([]byte, 144)},
		{name: "q", dims: []uint64{32}, typ: Q5_1, data: make([]byte, 24)},
		{name: "b", dims: []uint64{2}, typ: BF16, data: make([]byte, 4)},
	}}.encode()
	f.Add(kq)
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

// FuzzDequantizeBlocks decodes arbitrary bytes as every type DequantizeBlocks
// accepts and checks that it never panics, writes every value (the same bits
// whatever dst held before), agrees with Dequantize, and that
// FirstNonFiniteScale flags exactly the blocks that decode to non-finite
// values: a NaN or infinite scale spoils every value of its block (even a
// zero quant gives 0·Inf = NaN), and finite scales give only finite values.
//
//	go test -run XXX -fuzz=FuzzDequantizeBlocks -fuzztime=60s ./gguf/
func FuzzDequantizeBlocks(f *testing.F) {
	for i, typ := range floatTypeIDs {
		block := make([]byte, 2*typ.BlockBytes())
		for j := range block {
			block[j] = byte(31 * j)
		}
		f.Add(uint8(i), block)
		if offs := scaleOffsets[typ]; len(offs) > 0 {
			bad := slices.Clone(block)
			binary.LittleEndian.PutUint16(bad[typ.BlockBytes()+offs[len(offs)-1]:], 0x7c00) // +Inf
			f.Add(uint8(i), bad)
		}
	}
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		typ := floatTypeIDs[int(sel)%len(floatTypeIDs)]
		size, values := typ.BlockBytes(), typ.BlockValues()
		blocks := len(data) / size
		src := data[:blocks*size]
		got, again := make([]float32, blocks*values), make([]float32, blocks*values)
		for i := range got {
			got[i], again[i] = float32(math.NaN()), 12345
		}
		DequantizeBlocks(typ, got, src)
		DequantizeBlocks(typ, again, src)
		viaDequantize := make([]float32, len(got))
		if err := Dequantize(viaDequantize, src, typ); err != nil {
			t.Fatalf("%s: Dequantize of %d whole blocks: %v", typ, blocks, err)
		}
		for i := range got {
			if b := math.Float32bits(got[i]); b != math.Float32bits(again[i]) || b != math.Float32bits(viaDequantize[i]) {
				t.Fatalf("%s value %d: %g, then %g, via Dequantize %g", typ, i, got[i], again[i], viaDequantize[i])
			}
		}
		first := -1
		for b := range blocks {
			flagged := FirstNonFiniteScale(typ, src[b*size:(b+1)*size]) == 0
			if flagged && first < 0 {
				first = b
			}
			if values == 1 {
				continue // plain values are not checked
			}
			for i, v := range got[b*values : (b+1)*values] {
				if finite := !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0); finite == flagged {
					t.Fatalf("%s block %d value %d = %g, but its scales flagged = %v", typ, b, i, v, flagged)
				}
			}
		}
		if got := FirstNonFiniteScale(typ, src); got != first {
			t.Fatalf("%s: FirstNonFiniteScale = %d, want %d", typ, got, first)
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
