package model

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"gollm/goengine/gguf"
	"gollm/goengine/internal/goldentest"
)

// withKey is goldens/gqa.gguf rewritten with its model keys (no tokenizer),
// key set to value, and its tensors.
func withKey(t *testing.T, key string, value uint64) *gguf.File {
	t.Helper()
	f := goldentest.Open(t, "gqa.gguf")
	c, err := ConfigFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	kvs := Metadata(c)
	for i := range kvs {
		if kvs[i].Key == key {
			kvs[i].Value.Uint = value
			if value >= 1<<32 {
				kvs[i].Value.Type = gguf.UINT64
			}
		}
	}
	var tensors []gguf.TensorToWrite
	for _, info := range f.Tensors {
		tensors = append(tensors, gguf.TensorToWrite{Name: info.Name, Shape: info.Shape(), Type: info.Type, Data: f.TensorData(&info)})
	}
	var buf strings.Builder
	if err := gguf.Write(&buf, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	parsed, err := gguf.Parse([]byte(buf.String()), "hostile.gguf")
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

// TestAbsurdCountsFailFast: a file whose config claims counts far beyond what
// it holds (2^31-1 blocks, heads, positions...) is refused with a message
// naming the key, in well under a second: the loader bounds every count by
// the file before it builds names, tables or matrices from it.
func TestAbsurdCountsFailFast(t *testing.T) {
	const huge = 1<<31 - 1
	for _, c := range []struct {
		key   string
		value uint64
		want  string
	}{
		{"llama.block_count", huge, "llama.block_count"},
		{"llama.block_count", 3, "llama.block_count"},
		{"llama.vocab_size", huge, "token_embd.weight"},
		{"llama.embedding_length", 1 << 31, "llama.rope.dimension_count"},
		{"llama.attention.head_count", huge, "divisible by n_heads"},
		{"llama.attention.head_count_kv", huge, "divisible by n_kv_heads"},
		{"llama.feed_forward_length", huge, "ffn_gate.weight"},
		{"llama.context_length", huge, "llama.context_length"},
		{"llama.context_length", 1 << 31, "llama.context_length"},
		{"llama.rope.dimension_count", huge, "llama.rope.dimension_count"},
		{"llama.block_count", 1 << 40, "too large"},
	} {
		f := withKey(t, c.key, c.value)
		start := time.Now()
		_, err := Load(f)
		elapsed := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s = %d: err = %v, want one naming %s", c.key, c.value, err, c.want)
		}
		if elapsed > time.Second { // loose for a loaded machine: the bug took minutes
			t.Errorf("%s = %d: refused after %v, want under a second", c.key, c.value, elapsed)
		}
	}
}

// TestVocabularyMatchesTheTokenizer: the loader itself refuses a file whose
// tokenizer has another number of tokens than llama.vocab_size.
func TestVocabularyMatchesTheTokenizer(t *testing.T) {
	f := goldentest.Open(t, "gqa.gguf")
	f.Metadata["tokenizer.ggml.tokens"] = gguf.Value{Type: gguf.ARRAY, ElemType: gguf.STRING, Strs: make([]string, 321)}
	_, err := Load(f)
	if want := "tokenizer.ggml.tokens has 321 tokens but llama.vocab_size is 320"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// rewritten is goldens/gqa.gguf's model keys and tensors with edit applied to
// the keys (no tokenizer: ConfigFromGGUF reads only the model keys).
func rewritten(t *testing.T, edit func([]gguf.KV) []gguf.KV) *gguf.File {
	t.Helper()
	f := goldentest.Open(t, "gqa.gguf")
	c, err := ConfigFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	var tensors []gguf.TensorToWrite
	for _, info := range f.Tensors {
		tensors = append(tensors, gguf.TensorToWrite{Name: info.Name, Shape: info.Shape(), Type: info.Type, Data: f.TensorData(&info)})
	}
	var buf strings.Builder
	if err := gguf.Write(&buf, edit(Metadata(c)), tensors); err != nil {
		t.Fatal(err)
	}
	parsed, err := gguf.Parse([]byte(buf.String()), "published.gguf")
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

func str(key, value string) gguf.KV {
	return gguf.KV{Key: key, Value: gguf.Value{Type: gguf.STRING, Str: value}}
}

func u32(key string, value uint64) gguf.KV {
	return gguf.KV{Key: key, Value: gguf.Value{Type: gguf.UINT32, Uint: value}}
}

// TestConfigOfPublishedFiles: keys a published file may leave out get
// llama.cpp's defaults, and llama-architecture features goengine does not
// implement are refused by name rather than run wrongly.
func TestConfigOfPublishedFiles(t *testing.T) {
	without := func(keys ...string) func([]gguf.KV) []gguf.KV {
		return func(kvs []gguf.KV) []gguf.KV {
			var out []gguf.KV
			for _, kv := range kvs {
				if !slices.Contains(keys, kv.Key) {
					out = append(out, kv)
				}
			}
			return out
		}
	}
	with := func(extra ...gguf.KV) func([]gguf.KV) []gguf.KV {
		return func(kvs []gguf.KV) []gguf.KV {
			for _, kv := range extra {
				kvs = slices.DeleteFunc(kvs, func(old gguf.KV) bool { return old.Key == kv.Key })
			}
			return append(kvs, extra...)
		}
	}
	want, err := ConfigFromGGUF(goldentest.Open(t, "gqa.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFromGGUF(rewritten(t, without("llama.rope.freq_base", "llama.rope.dimension_count")))
	if err != nil || c != want {
		t.Errorf("without freq_base and rope.dimension_count: %+v, %v; want %+v (10000 and head_dim)", c, err, want)
	}
	tokens := make([]string, want.VocabSize)
	withTokens := func(kvs []gguf.KV) []gguf.KV {
		kvs = without("llama.vocab_size")(kvs)
		return append(kvs, gguf.KV{Key: "tokenizer.ggml.tokens", Value: gguf.Value{Type: gguf.ARRAY, ElemType: gguf.STRING, Strs: tokens}})
	}
	if c, err := ConfigFromGGUF(rewritten(t, withTokens)); err != nil || c.VocabSize != want.VocabSize {
		t.Errorf("without llama.vocab_size: vocab %d, %v; want %d, the tokens' count", c.VocabSize, err, want.VocabSize)
	}
	for _, bad := range []struct {
		edit func([]gguf.KV) []gguf.KV
		want string
	}{
		{with(str("general.architecture", "qwen2")), `architecture "qwen2" is not supported`},
		{with(str("llama.rope.scaling.type", "yarn")), `rope scaling "yarn" is not supported`},
		{with(u32("llama.rope.dimension_count", 8)), "llama.rope.dimension_count: 8 is not supported"},
		{with(u32("llama.attention.key_length", 32)), "llama.attention.key_length: 32 is not supported"},
		{with(u32("llama.expert_count", 8)), "mixture of experts is not supported"},
		{without("llama.vocab_size"), "llama.vocab_size: missing"},
	} {
		if _, err := ConfigFromGGUF(rewritten(t, bad.edit)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("err = %v, want one saying %q", err, bad.want)
		}
	}
}

// TestRopeScalingKeys: linear scaling needs its factor, a positive one.
func TestRopeScalingKeys(t *testing.T) {
	scaled := func(extra ...gguf.KV) func([]gguf.KV) []gguf.KV {
		return func(kvs []gguf.KV) []gguf.KV { return append(kvs, extra...) }
	}
	linear := str("llama.rope.scaling.type", "linear")
	factor := func(v float64) gguf.KV {
		return gguf.KV{Key: "llama.rope.scaling.factor", Value: gguf.Value{Type: gguf.FLOAT32, Float: v}}
	}
	m, err := Load(rewritten(t, scaled(linear, factor(8))))
	if err != nil || m.RopeScale != 8 || m.RopeFrequency(1) != m.RopeFrequency(0)*math.Pow(m.Config.RopeTheta, -2.0/float64(m.Config.HeadDim())) {
		t.Errorf("linear scaling by 8: scale %v, %v", m.RopeScale, err)
	}
	for _, c := range []struct {
		kvs  []gguf.KV
		want string
	}{
		{[]gguf.KV{linear}, `key "llama.rope.scaling.factor": missing`},
		{[]gguf.KV{linear, factor(0)}, "expected a positive factor"},
	} {
		if _, err := Load(rewritten(t, scaled(c.kvs...))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want one saying %q", err, c.want)
		}
	}
}
