package gguf

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const goldensDir = "../../goldens"

func goldenPath(name string) string { return filepath.Join(goldensDir, name) }

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(goldenPath(name))
	if err != nil {
		t.Fatalf("reading golden file: %v", err)
	}
	return data
}

func openGolden(t *testing.T, name string) *File {
	t.Helper()
	f, err := Open(goldenPath(name))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

func TestGQAModel(t *testing.T) {
	f := openGolden(t, "gqa.gguf")
	if f.Version != 3 || f.Alignment != 32 {
		t.Errorf("version %d, alignment %d; want 3, 32", f.Version, f.Alignment)
	}
	if arch, err := f.String("general.architecture"); err != nil || arch != "llama" {
		t.Errorf(`String("general.architecture") = %q, %v; want "llama"`, arch, err)
	}
	for key, want := range map[string]uint64{
		"llama.block_count":             2,
		"llama.embedding_length":        64,
		"llama.attention.head_count":    4,
		"llama.attention.head_count_kv": 2,
		"llama.vocab_size":              320,
		"llama.feed_forward_length":     192,
		"llama.context_length":          64,
		"llama.rope.dimension_count":    16,
		"tokenizer.ggml.bos_token_id":   312,
		"general.file_type":             0,
	} {
		got, err := f.Uint(key)
		if err != nil || got != want {
			t.Errorf("Uint(%q) = %d, %v; want %d", key, got, err, want)
		}
	}
	if eps, err := f.Float("llama.attention.layer_norm_rms_epsilon"); err != nil || eps != 1e-5 {
		t.Errorf("norm_eps = %v, %v; want 1e-05 (the shortest decimal of the stored float32)", eps, err)
	}
	if v := f.Metadata["llama.attention.layer_norm_rms_epsilon"]; v.Type != FLOAT32 || v.Float != float64(float32(1e-5)) {
		t.Errorf("raw norm_eps value = %v %v; want the exact float32 widening", v.Type, v.Float)
	}
	if theta, err := f.Float("llama.rope.freq_base"); err != nil || theta != 10000 {
		t.Errorf("rope_theta = %v, %v; want 10000", theta, err)
	}
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil || len(tokens) != 320 {
		t.Errorf("tokens: %d, %v; want 320", len(tokens), err)
	}
	types, err := f.Int32Array("tokenizer.ggml.token_type")
	if err != nil || len(types) != 320 || types[0] != 1 || types[312] != 3 {
		t.Errorf("token_type: len %d, %v", len(types), err)
	}
	if _, err := f.Strings("tokenizer.ggml.merges"); err != nil {
		t.Error(err)
	}
	if len(f.Tensors) != 2+9*2+1 {
		t.Errorf("%d tensors, want 21", len(f.Tensors))
	}
	if f.Tensors[0].Name != "token_embd.weight" || f.Keys[0] != "general.architecture" || len(f.Keys) != len(f.Metadata) {
		t.Errorf("file order: first tensor %q, first key %q, %d keys", f.Tensors[0].Name, f.Keys[0], len(f.Keys))
	}

	ti, ok := f.Tensor("blk.0.attn_k.weight")
	if !ok {
		t.Fatal(`Tensor("blk.0.attn_k.weight") not found`)
	}
	if !slices.Equal(ti.Dims, []uint64{64, 32}) || !slices.Equal(ti.Shape(), []int{32, 64}) || ti.Type != F32 ||
		ti.NumElements() != 2048 || ti.Size != 8192 || ti.Offset%32 != 0 || ti.ShapeString() != "(32, 64)" {
		t.Errorf("attn_k: %+v shape %v", *ti, ti.Shape())
	}
	w, err := f.Float32s("blk.0.attn_k.weight")
	if err != nil || len(w) != 2048 {
		t.Fatalf("Float32s: len %d, %v", len(w), err)
	}
	raw := f.TensorData(ti)
	if len(raw) != 8192 || math.Float32frombits(binary.LittleEndian.Uint32(raw[4*2047:])) != w[2047] {
		t.Errorf("TensorData disagrees with Float32s")
	}
	// Random N(0, 1/64) weights: a sanity check that the right bytes were read.
	var sumSq float64
	for _, x := range w {
		sumSq += float64(x) * float64(x)
	}
	if rms := math.Sqrt(sumSq / 2048); rms < 0.1 || rms > 0.15 {
		t.Errorf("attn_k rms %.4f, want about 1/8", rms)
	}
	if norm, ok := f.Tensor("output_norm.weight"); !ok || !slices.Equal(norm.Shape(), []int{64}) || norm.ShapeString() != "(64,)" {
		t.Errorf("output_norm.weight: %v", norm)
	}
	if _, err := f.Int32s("blk.0.attn_k.weight"); err == nil || !strings.Contains(err.Error(), "expected I32, found F32") {
		t.Errorf("Int32s of an F32 tensor: %v", err)
	}
	if _, err := f.Float32s("rope_freqs.weight"); err == nil ||
		err.Error() != `gguf: ../../goldens/gqa.gguf: tensor "rope_freqs.weight": missing` {
		t.Errorf("missing tensor: %v", err)
	}
}

func TestMHAModel(t *testing.T) {
	f := openGolden(t, "mha.gguf")
	if n, err := f.Uint("llama.attention.head_count_kv"); err != nil || n != 4 {
		t.Errorf("head_count_kv %d, %v", n, err)
	}
	if _, ok := f.Tensor("output.weight"); ok {
		t.Error("mha.gguf has tied embeddings; output.weight should be absent")
	}
}

func TestSamplerGoldens(t *testing.T) {
	f := openGolden(t, "sampler.gguf")
	if arch, err := f.String("general.architecture"); err != nil || arch != "gollm.goldens" {
		t.Errorf("architecture %q, %v", arch, err)
	}
	count, err := f.Uint("rng.count")
	if err != nil || count != 4 {
		t.Fatalf("rng.count = %d, %v; want 4", count, err)
	}
	wantSeeds := []uint64{0, 1, 42, math.MaxUint64}
	for k := range count {
		prefix := "rng." + itoa(k) + "."
		seed, err := f.Uint(prefix + "seed")
		if err != nil || seed != wantSeeds[k] {
			t.Errorf("%sseed = %d, %v; want %d", prefix, seed, err, wantSeeds[k])
		}
		next, err := f.Uint64Array(prefix + "next_u64")
		if err != nil || len(next) != 8 {
			t.Errorf("%snext_u64: len %d, %v", prefix, len(next), err)
		}
		uniform, err := f.Float64Array(prefix + "uniform")
		if err != nil || len(uniform) != 8 {
			t.Errorf("%suniform: len %d, %v", prefix, len(uniform), err)
		}
		for _, u := range uniform {
			if u < 0 || u >= 1 {
				t.Errorf("%suniform value %v outside [0, 1)", prefix, u)
			}
		}
	}
	// spec/sampling.md tabulates seed 0's first uniforms.
	if u, _ := f.Float64Array("rng.0.uniform"); len(u) > 1 && (u[0] != 0.7980168110092412 || u[1] != 0.5348769017648575) {
		t.Errorf("rng.0.uniform starts %v", u[:2])
	}
	n, err := f.Uint("sampler.count")
	if err != nil || n == 0 {
		t.Fatalf("sampler.count = %d, %v", n, err)
	}
	for k := range n {
		prefix := "sampler." + itoa(k) + "."
		ids, err := f.Int32Array(prefix + "ids")
		if err != nil || len(ids) != 16 {
			t.Errorf("%sids: len %d, %v", prefix, len(ids), err)
		}
		for _, id := range ids {
			if id < 0 || id >= 64 {
				t.Errorf("%sids: id %d outside 0..63", prefix, id)
			}
		}
		if _, err := f.Float(prefix + "temperature"); err != nil {
			t.Error(err)
		}
		if _, err := f.Uint(prefix + "top_k"); err != nil {
			t.Error(err)
		}
		logits, err := f.Float32s(prefix + "logits")
		if err != nil || len(logits) != 64 {
			t.Errorf("%slogits: len %d, %v", prefix, len(logits), err)
		}
	}
	// Wrong types name the key, what was expected and what was found.
	for _, tc := range []struct {
		get  func() error
		want string
	}{
		{func() error { _, err := f.String("rng.count"); return err }, `key "rng.count": type: expected STRING, found UINT32`},
		{func() error { _, err := f.Uint("rng.0.next_u64"); return err }, `key "rng.0.next_u64": type: expected an integer, found ARRAY of UINT64`},
		{func() error { _, err := f.Float("rng.count"); return err }, `type: expected FLOAT32 or FLOAT64, found UINT32`},
		{func() error { _, err := f.Strings("rng.0.next_u64"); return err }, `expected ARRAY of STRING, found ARRAY of UINT64`},
		{func() error { _, err := f.Int32Array("rng.0.next_u64"); return err }, `element 0: expected a value that fits int32`},
		{func() error { _, err := f.Float64Array("sampler.0.ids"); return err }, `expected ARRAY of FLOAT32 or FLOAT64, found ARRAY of INT32`},
		{func() error { _, err := f.Uint64Array("rng.0.uniform"); return err }, `expected ARRAY of an integer type, found ARRAY of FLOAT64`},
		{func() error { _, err := f.Int32s("sampler.0.logits"); return err }, `expected I32, found F32`},
		{func() error { _, err := f.Bool("rng.count"); return err }, `expected BOOL, found UINT32`},
		{func() error { _, err := f.Uint("no.such.key"); return err }, `gguf: ../../goldens/sampler.gguf: key "no.such.key": missing`},
	} {
		err := tc.get()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got error %v, want one containing %q", err, tc.want)
		}
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Path != goldenPath("sampler.gguf") {
			t.Errorf("error %v is not a *FormatError naming the file", err)
		}
	}
}

func TestActivationGoldens(t *testing.T) {
	f := openGolden(t, "gqa.activations.gguf")
	if arch, err := f.String("general.architecture"); err != nil || arch != "gollm.goldens" {
		t.Errorf("architecture %q, %v", arch, err)
	}
	tokens, err := f.Int32s("tokens")
	if err != nil || len(tokens) != 24 || tokens[0] != 312 {
		t.Fatalf("tokens = %v, %v; want 24 ids starting with BOS 312", tokens, err)
	}
	if ti, _ := f.Tensor("tokens"); ti.Type != I32 || !slices.Equal(ti.Shape(), []int{24}) {
		t.Errorf("tokens info %+v", ti)
	}
	if _, err := f.Float32s("tokens"); err == nil || !strings.Contains(err.Error(), "found I32") {
		t.Errorf("Float32s of an I32 tensor: %v", err)
	}
	logits, err := f.Float32s("logits")
	if ti, _ := f.Tensor("logits"); err != nil || len(logits) != 24*320 || !slices.Equal(ti.Shape(), []int{24, 320}) {
		t.Errorf("logits: len %d, %v", len(logits), err)
	}
	if p, err := f.Uint("goldens.decode.prompt_length"); err != nil || p != 8 {
		t.Errorf("prompt_length %d, %v", p, err)
	}
}

// Open and Parse must agree, and Close must release the data.
func TestOpenParseClose(t *testing.T) {
	data := readGolden(t, "mha.activations.gguf")
	parsed, err := Parse(data, "mem")
	if err != nil {
		t.Fatal(err)
	}
	opened, err := Open(goldenPath("mha.activations.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.Tensors) != len(opened.Tensors) || opened.DataStart() != parsed.DataStart() {
		t.Fatalf("Open and Parse disagree")
	}
	for i := range parsed.Tensors {
		a, b := parsed.TensorData(&parsed.Tensors[i]), opened.TensorData(&opened.Tensors[i])
		if string(a) != string(b) {
			t.Errorf("tensor %s: data differs", parsed.Tensors[i].Name)
		}
	}
	if err := opened.Close(); err != nil {
		t.Fatal(err)
	}
	if err := opened.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if d := opened.TensorData(&opened.Tensors[0]); d != nil {
		t.Errorf("TensorData after Close returned %d bytes", len(d))
	}
	if _, err := opened.Float32s("logits"); err == nil {
		t.Errorf("Float32s after Close succeeded")
	}
	// A TensorInfo that is not the file's is bounds-checked too.
	bogus := TensorInfo{Name: "x", Dims: []uint64{1}, Offset: math.MaxUint64 - 1, Size: 4}
	if d := parsed.TensorData(&bogus); d != nil {
		t.Errorf("TensorData of an out-of-range TensorInfo returned %d bytes", len(d))
	}
	if d := parsed.TensorData(nil); d != nil {
		t.Errorf("TensorData(nil) returned data")
	}
}

// Where mapping fails, Open reads the file instead.
func TestOpenWithoutMmap(t *testing.T) {
	mmap = func(*os.File, int) ([]byte, func() error, error) { return nil, nil, errors.ErrUnsupported }
	defer func() { mmap = mmapFile }()
	f, err := Open(goldenPath("sampler.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.Uint("rng.count"); err != nil || n != 4 {
		t.Errorf("rng.count = %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "absent.gguf"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file: %v; want fs.ErrNotExist", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.gguf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), "header: file has 0 bytes") {
		t.Errorf("Open of an empty file: %v", err)
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Errorf("Open of a directory succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	data := readGolden(t, "sampler.gguf")
	if err := os.WriteFile(bad, data[:len(data)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), "extends past the end") {
		t.Errorf("Open of a truncated file: %v", err)
	}
}

// Every truncation of a model file before the end of its last tensor's data
// is an error, never a panic.
func TestTruncated(t *testing.T) {
	data := readGolden(t, "gqa.gguf")
	f, err := Parse(data, "gqa.gguf")
	if err != nil {
		t.Fatal(err)
	}
	end := uint64(0)
	for i := range f.Tensors {
		end = max(end, f.DataStart()+f.Tensors[i].Offset+f.Tensors[i].Size)
	}
	if end != uint64(len(data)) {
		t.Fatalf("last tensor ends at %d, file has %d bytes", end, len(data))
	}
	check := func(n int) {
		if _, err := Parse(data[:n:n], "gqa.gguf"); err == nil {
			t.Errorf("Parse of the first %d bytes succeeded", n)
		} else if !strings.HasPrefix(err.Error(), "gguf: gqa.gguf: ") {
			t.Errorf("error without the file name: %v", err)
		}
	}
	for n := 0; n < 2048; n++ {
		check(n)
	}
	for n := 2048; n < len(data); n += 997 {
		check(n)
	}
	check(len(data) - 1)
}

// base is a small valid file with a bit of everything, for corruption tests.
func baseFile() testFile {
	return testFile{
		kvs: []testKV{
			kvString("general.architecture", "test"),
			kvU32("k.one", 7),
			kvStrings("k.two", "a", "bc"),
			kvBool("k.flag", 1),
		},
		tensors: []testTensor{
			{name: "t0", dims: []uint64{4, 2}, typ: F32, data: f32Bytes(1, 2, 3, 4, 5, 6, 7, 8)},
			{name: "t1", dims: []uint64{8}, typ: F32, data: f32Bytes(8, 7, 6, 5, 4, 3, 2, 1)},
		},
	}
}

func TestBaseFile(t *testing.T) {
	data, l := baseFile().encode()
	f, err := Parse(data, "base.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != 2 || f.Tensors[1].Offset != 32 || f.DataStart() != uint64(l.dataStart) {
		t.Errorf("tensors %+v, data start %d", f.Tensors, f.DataStart())
	}
	if got, _ := f.Float32s("t1"); !slices.Equal(got, []float32{8, 7, 6, 5, 4, 3, 2, 1}) {
		t.Errorf("t1 = %v", got)
	}
	if b, err := f.Bool("k.flag"); err != nil || !b {
		t.Errorf("k.flag = %v, %v", b, err)
	}
	if s, _ := f.Strings("k.two"); !slices.Equal(s, []string{"a", "bc"}) {
		t.Errorf("k.two = %q", s)
	}
	if v := f.Metadata["k.two"]; v.String() != `["a" "bc"]` || v.Len() != 2 || v.TypeName() != "ARRAY of STRING" {
		t.Errorf("Value.String = %s, Len %d, TypeName %s", v, v.Len(), v.TypeName())
	}
}

func putU32(off int, x uint32) func([]byte, testLayout) {
	return func(b []byte, _ testLayout) { binary.LittleEndian.PutUint32(b[off:], x) }
}

func TestCorruptHeader(t *testing.T) {
	type patch = func(b []byte, l testLayout)
	tests := []struct {
		name  string
		patch patch
		want  string
	}{
		{"bad magic", func(b []byte, _ testLayout) { copy(b, "GGML") }, `header: magic: expected "GGUF" (47 47 55 46), found 47 47 4d 4c`},
		{"version 2", putU32(4, 2), "header: version: expected 3, found 2"},
		{"version 1", putU32(4, 1), "header: version: expected 3, found 1"},
		{"big-endian version", func(b []byte, _ testLayout) { binary.BigEndian.PutUint32(b[4:], 3) },
			"version: expected 3, found 50331648 (0x03000000): the file looks big-endian"},
		{"huge tensor_count", func(b []byte, _ testLayout) { binary.LittleEndian.PutUint64(b[8:], 1<<32) },
			"header: tensor_count 4294967296 cannot fit in the"},
		{"max tensor_count", func(b []byte, _ testLayout) { binary.LittleEndian.PutUint64(b[8:], math.MaxUint64) },
			"tensor_count 18446744073709551615 cannot fit"},
		{"huge kv count", func(b []byte, _ testLayout) { binary.LittleEndian.PutUint64(b[16:], 1<<40) },
			"header: metadata_kv_count 1099511627776 cannot fit"},
		{"counts fit alone, not together", func(b []byte, _ testLayout) {
			rem := uint64(len(b) - 24)
			binary.LittleEndian.PutUint64(b[8:], rem/32)
			binary.LittleEndian.PutUint64(b[16:], rem/13)
		}, "need at least"},
		{"key length past the end", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.keyLen[1]:], 1<<40) },
			"metadata key/value 1: key at byte"},
		{"key length max", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.keyLen[0]:], math.MaxUint64) },
			"length 18446744073709551615 runs past the end of the file"},
		{"string value past the end", func(b []byte, l testLayout) {
			binary.LittleEndian.PutUint64(b[l.valueType[0]+4:], uint64(len(b)))
		}, `key "general.architecture": value at byte`},
		{"unknown value type", func(b []byte, l testLayout) { binary.LittleEndian.PutUint32(b[l.valueType[1]:], 13) },
			`key "k.one": value type: expected 0..12, found 13`},
		{"unknown array element type", func(b []byte, l testLayout) { binary.LittleEndian.PutUint32(b[l.valueType[2]+4:], 99) },
			`key "k.two": array element type: expected 0..12 except 9 (ARRAY), found 99`},
		{"nested array", func(b []byte, l testLayout) { binary.LittleEndian.PutUint32(b[l.valueType[2]+4:], 9) },
			`key "k.two": array element type: nested arrays are not supported`},
		{"array length past the end", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.valueType[2]+8:], 1<<61) },
			`key "k.two": array of 2305843009213693952 STRING at byte`},
		{"bool 2", func(b []byte, l testLayout) { b[l.valueType[3]+4] = 2 },
			`key "k.flag": value: BOOL must be 0 or 1, found 2`},
		{"duplicate key", func(b []byte, l testLayout) { copy(b[l.keyLen[2]+8:], "k.one") },
			`key "k.one": duplicate key`},
		{"invalid UTF-8 in a key", func(b []byte, l testLayout) { b[l.keyLen[1]+8] = 0xff },
			`metadata key/value 1: key at byte`},
		{"duplicate tensor name", func(b []byte, l testLayout) { copy(b[l.nameLen[1]+8:], "t0") },
			`tensor "t0": duplicate tensor name (tensor infos 0 and 1)`},
		{"invalid UTF-8 in a tensor name", func(b []byte, l testLayout) { b[l.nameLen[1]+9] = 0xc0 },
			`tensor info 1: name at byte`},
		{"n_dims 0", putU32Field(func(l testLayout) int { return l.nDims[0] }, 0), `tensor "t0": n_dims: expected 1..4, found 0`},
		{"n_dims 5", putU32Field(func(l testLayout) int { return l.nDims[1] }, 5), `tensor "t1": n_dims: expected 1..4, found 5`},
		{"n_dims huge", putU32Field(func(l testLayout) int { return l.nDims[1] }, math.MaxUint32), "n_dims: expected 1..4, found 4294967295"},
		{"zero dimension", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.dims[0]+8:], 0) },
			`tensor "t0": ne[1]: expected a dimension > 0, found 0`},
		{"element count overflow", func(b []byte, l testLayout) {
			binary.LittleEndian.PutUint64(b[l.dims[0]:], 1<<32)
			binary.LittleEndian.PutUint64(b[l.dims[0]+8:], 1<<32)
		}, `tensor "t0": dimensions [4294967296 4294967296]: the number of elements overflows 64 bits`},
		{"byte size overflow", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.dims[1]:], 1<<62) },
			`tensor "t1": 4611686018427387904 F32 values: the byte size overflows 64 bits`},
		{"unsupported tensor type", putU32Field(func(l testLayout) int { return l.tensorType[0] }, 16),
			`tensor "t0": type: expected F32 (0), F16 (1), Q4_0 (2), Q4_1 (3), Q5_0 (6), Q5_1 (7), Q8_0 (8), Q2_K (10), Q3_K (11), Q4_K (12), Q5_K (13), Q6_K (14), I32 (26) or BF16 (30), found IQ2_XXS (16)`},
		{"Q8_1", putU32Field(func(l testLayout) int { return l.tensorType[1] }, 9), "found Q8_1 (9)"},
		{"removed tensor type", putU32Field(func(l testLayout) int { return l.tensorType[1] }, 4), "found TensorType(4) (4)"},
		{"undefined tensor type", putU32Field(func(l testLayout) int { return l.tensorType[1] }, 1000), "found TensorType(1000) (1000)"},
		{"Q8_0 row not a multiple of 32", putU32Field(func(l testLayout) int { return l.tensorType[1] }, 8),
			`tensor "t1": Q8_0 needs ne[0] to be a multiple of 32, found ne = [8]`},
		{"Q4_0 row not a multiple of 32", putU32Field(func(l testLayout) int { return l.tensorType[1] }, 2),
			`tensor "t1": Q4_0 needs ne[0] to be a multiple of 32, found ne = [8]`},
		{"Q4_K rows not a multiple of 256", putU32Field(func(l testLayout) int { return l.tensorType[0] }, 12),
			`tensor "t0": Q4_K needs ne[0] to be a multiple of 256, found ne = [4 2]`},
		{"misaligned offset", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.tensorOff[1]:], 36) },
			`tensor "t1": offset: expected a multiple of the alignment 32, found 36`},
		{"offset out of bounds", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.tensorOff[1]:], 1<<20) },
			`tensor "t1": data (offset 1048576, 32 bytes`},
		{"offset overflows", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.tensorOff[0]:], math.MaxUint64-31) },
			`tensor "t0": data (offset 18446744073709551584`},
		{"data past the end", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.dims[1]:], 9) },
			`tensor "t1": data (offset 32, 36 bytes`},
		{"overlapping tensors", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.tensorOff[1]:], 0) },
			`tensor "t1": data [0, 32) overlaps tensor "t0"'s data [0, 32)`},
		{"partly overlapping tensors", func(b []byte, l testLayout) { binary.LittleEndian.PutUint64(b[l.dims[0]+8:], 3) },
			`tensor "t1": data [32, 64) overlaps tensor "t0"'s data [0, 48)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, l := baseFile().encode()
			tc.patch(data, l)
			f, err := Parse(data, "base.gguf")
			if err == nil {
				t.Fatalf("Parse succeeded: %d tensors", len(f.Tensors))
			}
			if !strings.HasPrefix(err.Error(), "gguf: base.gguf: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n  %v\nwant one containing\n  %s", err, tc.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("error %T is not a *FormatError", err)
			}
		})
	}
}

func putU32Field(at func(testLayout) int, x uint32) func([]byte, testLayout) {
	return func(b []byte, l testLayout) { binary.LittleEndian.PutUint32(b[at(l):], x) }
}

// Files built with the writer, rather than patched, for the rest of stage 1.
func TestInvalidFiles(t *testing.T) {
	tests := []struct {
		name string
		file testFile
		want string
	}{
		{"alignment 0", testFile{kvs: []testKV{kvU32("general.alignment", 0)}},
			`key "general.alignment": expected a non-zero power of two, found 0`},
		{"alignment 48", testFile{kvs: []testKV{kvU32("general.alignment", 48)}},
			`key "general.alignment": expected a non-zero power of two, found 48`},
		{"alignment string", testFile{kvs: []testKV{kvString("general.alignment", "32")}},
			`key "general.alignment": expected a non-zero power of two (an integer), found STRING`},
		{"alignment negative", testFile{kvs: []testKV{kvI32("general.alignment", -32)}},
			`expected a non-zero power of two (an integer), found -32`},
		{"alignment float", testFile{kvs: []testKV{kvF32("general.alignment", 32)}}, "found FLOAT32"},
		{"nested array", testFile{kvs: []testKV{kvArray("a", ARRAY, 1, cat(le32(uint32(UINT8)), le64(1), []byte{1}))}},
			`key "a": array element type: nested arrays are not supported`},
		{"bool array", testFile{kvs: []testKV{kvArray("a", BOOL, 3, []byte{0, 1, 7})}},
			`key "a": array element 2: BOOL must be 0 or 1, found 7`},
		{"invalid UTF-8 value", testFile{kvs: []testKV{kvString("a", "ok\xffno")}}, `key "a": value at byte`},
		{"invalid UTF-8 array element", testFile{kvs: []testKV{kvStrings("a", "x", "\xc3")}}, `key "a": array element 1 at byte`},
		{"truncated scalar", testFile{kvs: []testKV{kvRaw("a", UINT64, []byte{1, 2})}, noPad: true}, `key "a": value (UINT64) at byte`},
		{"huge uint32 array", testFile{kvs: []testKV{kvArray("a", UINT32, 1<<62, nil)}}, `key "a": array of 4611686018427387904 UINT32 at byte`},
		{"Q8_0 with ne[0] 48", testFile{tensors: []testTensor{{name: "q", dims: []uint64{48, 2}, typ: Q8_0, data: make([]byte, 102)}}},
			`tensor "q": Q8_0 needs ne[0] to be a multiple of 32, found ne = [48 2]`},
		{"valid", testFile{kvs: []testKV{kvU32("a", 1)}, tensors: []testTensor{{name: "t", dims: []uint64{1}, typ: F32, data: f32Bytes(1)}}}, ""},
		{"valid, empty", testFile{noPad: true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := tc.file.encode()
			_, err := Parse(data, "x.gguf")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				for n := range len(data) { // the writer writes no final padding
					if _, err := Parse(data[:n], "x.gguf"); err == nil {
						t.Errorf("Parse of %d of %d bytes succeeded", n, len(data))
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n  %v\nwant one containing\n  %s", err, tc.want)
			}
		})
	}
}

// Readers accept what correctness allows: any integer type for
// general.alignment, gaps between tensors, tensors out of order, and no
// final padding.
func TestValidVariants(t *testing.T) {
	tf := testFile{
		alignment: 64,
		kvs:       []testKV{kvU8("general.alignment", 64), kvI8("i8", -5), kvI16("i16", 300), kvU16("u16", 65535), kvI64("i64", -1), kvU64("u64", math.MaxUint64), kvF64("f64", 0.1), kvF32("f32", 0.1), kvBool("b", 0)},
		tensors: []testTensor{
			{name: "late", dims: []uint64{2}, typ: F32, data: f32Bytes(1, 2), offset: 256, fixedOffset: true},
			{name: "early", dims: []uint64{3}, typ: F32, data: f32Bytes(3, 4, 5), offset: 0, fixedOffset: true},
		},
	}
	data, _ := tf.encode()
	f, err := Parse(data, "v.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 {
		t.Errorf("alignment %d", f.Alignment)
	}
	if got, _ := f.Float32s("late"); !slices.Equal(got, []float32{1, 2}) {
		t.Errorf("late = %v", got)
	}
	if v, err := f.Uint("u16"); err != nil || v != 65535 {
		t.Errorf("u16 %d %v", v, err)
	}
	if v, err := f.Uint("u64"); err != nil || v != math.MaxUint64 {
		t.Errorf("u64 %d %v", v, err)
	}
	if _, err := f.Int("u64"); err == nil || !strings.Contains(err.Error(), "fits int64") {
		t.Errorf("Int(u64 max): %v", err)
	}
	if v, err := f.Int("i8"); err != nil || v != -5 {
		t.Errorf("i8 %d %v", v, err)
	}
	if _, err := f.Uint("i8"); err == nil || !strings.Contains(err.Error(), `key "i8": expected a non-negative integer, found -5`) {
		t.Errorf("Uint(i8 = -5): %v", err)
	}
	if v, err := f.Uint("i16"); err != nil || v != 300 {
		t.Errorf("i16 %d %v", v, err)
	}
	if v, err := f.Float("f32"); err != nil || v != 0.1 {
		t.Errorf("Float(f32) = %v, %v; want 0.1, the shortest decimal", v, err)
	}
	if v, err := f.Float("f64"); err != nil || v != 0.1 {
		t.Errorf("Float(f64) = %v, %v", v, err)
	}
	if v, err := f.Bool("b"); err != nil || v {
		t.Errorf("Bool = %v, %v", v, err)
	}
}

func TestIntegerArrays(t *testing.T) {
	tf := testFile{kvs: []testKV{
		kvArray("u8", UINT8, 3, []byte{0, 1, 255}),
		kvArray("i16", INT16, 2, cat(le16(uint16(0xffff)), le16(7))),
		kvArray("u32big", UINT32, 1, le32(1<<31)),
		kvArray("i64", INT64, 2, cat(le64(uint64(1)), le64(1<<40))),
		kvArray("f32", FLOAT32, 2, cat(le32(math.Float32bits(1e-5)), le32(math.Float32bits(2)))),
		kvArray("empty", UINT32, 0, nil),
	}}
	data, _ := tf.encode()
	f, err := Parse(data, "a.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Int32Array("u8"); err != nil || !slices.Equal(v, []int32{0, 1, 255}) {
		t.Errorf("u8 %v %v", v, err)
	}
	if v, err := f.Int32Array("i16"); err != nil || !slices.Equal(v, []int32{-1, 7}) {
		t.Errorf("i16 %v %v", v, err)
	}
	if _, err := f.Uint64Array("i16"); err == nil || !strings.Contains(err.Error(), "element 0: expected a non-negative integer, found -1") {
		t.Errorf("Uint64Array(i16): %v", err)
	}
	if _, err := f.Int32Array("u32big"); err == nil || !strings.Contains(err.Error(), "found 2147483648") {
		t.Errorf("Int32Array(u32big): %v", err)
	}
	if _, err := f.Int32Array("i64"); err == nil || !strings.Contains(err.Error(), "element 1: expected a value that fits int32, found 1099511627776") {
		t.Errorf("Int32Array(i64): %v", err)
	}
	if v, err := f.Uint64Array("i64"); err != nil || !slices.Equal(v, []uint64{1, 1 << 40}) {
		t.Errorf("Uint64Array(i64) %v %v", v, err)
	}
	if v, err := f.Float64Array("f32"); err != nil || !slices.Equal(v, []float64{1e-5, 2}) {
		t.Errorf("Float64Array(f32) %v %v", v, err)
	}
	if v, err := f.Uint64Array("empty"); err != nil || len(v) != 0 {
		t.Errorf("empty %v %v", v, err)
	}
}

func TestFloat16ToFloat32(t *testing.T) {
	tests := []struct {
		bits uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},
		{0x0400, 1.0 / (1 << 14)},       // smallest normal
		{0x0001, 1.0 / (1 << 24)},       // smallest subnormal
		{0x03ff, 1023.0 / (1 << 24)},    // largest subnormal
		{0x8001, -1.0 / (1 << 24)},      // negative subnormal
		{0x211f, 1311.0 / 131072},       // 0.0100021362…, spec/format.md §5.3
		{0x7c00, float32(math.Inf(1))},  // +Inf
		{0xfc00, float32(math.Inf(-1))}, // -Inf
	}
	for _, tc := range tests {
		if got := Float16ToFloat32(tc.bits); got != tc.want {
			t.Errorf("Float16ToFloat32(%#04x) = %g, want %g", tc.bits, got, tc.want)
		}
	}
	if neg := Float16ToFloat32(0x8000); neg != 0 || !math.Signbit(float64(neg)) {
		t.Errorf("0x8000 = %g, want -0", neg)
	}
	for _, nan := range []uint16{0x7e00, 0x7c01, 0xfe00} {
		if got := Float16ToFloat32(nan); !math.IsNaN(float64(got)) {
			t.Errorf("Float16ToFloat32(%#04x) = %g, want NaN", nan, got)
		}
	}
	// Every finite value against the definition: (-1)^s · 2^(e-15) · (1 + m/1024),
	// or 2^-14 · m/1024 for subnormals.
	for h := range 1 << 16 {
		s, e, m := h>>15, (h>>10)&0x1f, h&0x3ff
		if e == 0x1f {
			continue
		}
		want := math.Ldexp(1+float64(m)/1024, e-15)
		if e == 0 {
			want = math.Ldexp(float64(m)/1024, -14)
		}
		if s == 1 {
			want = -want
		}
		if got := Float16ToFloat32(uint16(h)); float64(got) != want {
			t.Fatalf("Float16ToFloat32(%#04x) = %g, want %g", h, got, want)
		}
	}
}

// The Q8_0 example of spec/format.md §5.3: d stored as 0x211F, q beginning
// 50, -127, 0, 1.
func TestDequantizeQ8_0(t *testing.T) {
	q := make([]int8, 64)
	copy(q, []int8{50, -127, 0, 1})
	for i := 4; i < 64; i++ {
		q[i] = int8(i*7 - 200)
	}
	var block []byte
	for b := range 2 {
		d := uint16(0x211f)
		if b == 1 {
			d = 0xc000 // -2
		}
		block = append(block, le16(d)...)
		for _, x := range q[32*b : 32*b+32] {
			block = append(block, byte(x))
		}
	}
	got := make([]float32, 64)
	if err := Dequantize(got, block, Q8_0); err != nil {
		t.Fatal(err)
	}
	d := float32(1311.0 / 131072)
	for i, want := range []float32{0.50010681152343750, -1.2702713012695312, 0, d} {
		if got[i] != want {
			t.Errorf("value %d = %.17g, want %.17g", i, got[i], want)
		}
	}
	for i := range 64 {
		scale := d
		if i >= 32 {
			scale = -2
		}
		if want := scale * float32(q[i]); got[i] != want {
			t.Errorf("value %d = %g, want %g", i, got[i], want)
		}
	}
	// The same block through a file: two rows of 32 values (ne = [32, 2]).
	tf := testFile{tensors: []testTensor{{name: "w", dims: []uint64{32, 2}, typ: Q8_0, data: block}}}
	data, _ := tf.encode()
	f, err := Parse(data, "q.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if ti, _ := f.Tensor("w"); ti.Size != 68 || !slices.Equal(ti.Shape(), []int{2, 32}) {
		t.Errorf("w info %+v", ti)
	}
	if fromFile, err := f.Float32s("w"); err != nil || !slices.Equal(fromFile, got) {
		t.Errorf("Float32s(w) = %v, %v", fromFile, err)
	}
	if err := Dequantize(got[:63], block, Q8_0); err == nil {
		t.Error("Dequantize of 63 Q8_0 values succeeded")
	}
	if err := Dequantize(got, block[:67], Q8_0); err == nil {
		t.Error("Dequantize of a short Q8_0 buffer succeeded")
	}
	if err := Dequantize(got, block, I32); err == nil {
		t.Error("Dequantize of I32 succeeded")
	}
}

func TestF16Tensor(t *testing.T) {
	tf := testFile{tensors: []testTensor{
		{name: "h", dims: []uint64{3}, typ: F16, data: cat(le16(0x3c00), le16(0xc000), le16(0x0001))},
		{name: "ids", dims: []uint64{2}, typ: I32, data: cat(le32(uint32(0xffffffff)), le32(312))},
	}}
	data, _ := tf.encode()
	f, err := Parse(data, "h.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Float32s("h"); err != nil || !slices.Equal(got, []float32{1, -2, 1.0 / (1 << 24)}) {
		t.Errorf("Float32s(h) = %v, %v", got, err)
	}
	if got, err := f.Int32s("ids"); err != nil || !slices.Equal(got, []int32{-1, 312}) {
		t.Errorf("Int32s(ids) = %v, %v", got, err)
	}
}

func TestTypeNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{UINT32.String(), "UINT32"}, {STRING.String(), "STRING"}, {FLOAT64.String(), "FLOAT64"},
		{ValueType(13).String(), "ValueType(13)"},
		{F32.String(), "F32"}, {Q8_0.String(), "Q8_0"}, {I32.String(), "I32"},
		{TensorType(14).String(), "Q6_K"}, {TensorType(4).String(), "TensorType(4)"},
		{FormatShape([]int{2, 3}), "(2, 3)"}, {FormatShape([]int{5}), "(5,)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
