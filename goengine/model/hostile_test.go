package model

import (
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
