package model

import (
	"fmt"
	"math"
	"strconv"

	"gollm/goengine/gguf"
)

// Config is the shape of a model; the fields are those of spec/model.md §2 and
// of jaxmodel/config.py's ModelConfig.
type Config struct {
	VocabSize     int
	Dim           int
	NLayers       int
	NHeads        int
	NKVHeads      int
	FFNDim        int
	ContextLength int
	RopeTheta     float64
	NormEps       float64
	TieEmbeddings bool
}

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.Dim / c.NHeads }

// KVDim is the width of all key (or value) heads together.
func (c Config) KVDim() int { return c.NKVHeads * c.HeadDim() }

// NRep is the number of query heads that share one KV head.
func (c Config) NRep() int { return c.NHeads / c.NKVHeads }

// Validate checks the constraints of spec/model.md §2.1.
func (c Config) Validate() error {
	ints := []struct {
		name  string
		value int
	}{
		{"vocab_size", c.VocabSize}, {"dim", c.Dim}, {"n_layers", c.NLayers}, {"n_heads", c.NHeads},
		{"n_kv_heads", c.NKVHeads}, {"ffn_dim", c.FFNDim}, {"context_length", c.ContextLength},
	}
	for _, f := range ints {
		if f.value <= 0 {
			return fmt.Errorf("%s must be positive, found %d", f.name, f.value)
		}
	}
	for _, f := range []struct {
		name  string
		value float64
	}{{"rope_theta", c.RopeTheta}, {"norm_eps", c.NormEps}} {
		name, v := f.name, f.value
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return fmt.Errorf("%s must be a positive finite number, found %v", name, v)
		}
	}
	if c.Dim%c.NHeads != 0 {
		return fmt.Errorf("dim (%d) must be divisible by n_heads (%d)", c.Dim, c.NHeads)
	}
	if c.NHeads%c.NKVHeads != 0 {
		return fmt.Errorf("n_heads (%d) must be divisible by n_kv_heads (%d)", c.NHeads, c.NKVHeads)
	}
	if c.HeadDim()%2 != 0 {
		return fmt.Errorf("head_dim = dim / n_heads = %d must be even (RoPE rotates pairs)", c.HeadDim())
	}
	return nil
}

// ParamCount is the formula of spec/model.md §3.
func (c Config) ParamCount() int64 {
	d, q := int64(c.Dim), int64(c.NHeads*c.HeadDim())
	perLayer := 2*d + d*q + 2*d*int64(c.KVDim()) + q*d + 3*d*int64(c.FFNDim)
	total := int64(c.VocabSize)*d + int64(c.NLayers)*perLayer + d
	if !c.TieEmbeddings {
		total += int64(c.VocabSize) * d
	}
	return total
}

// TensorSpec is one tensor of the profile with its row-major shape.
type TensorSpec struct {
	Name  string
	Shape []int
}

// Tensors lists every tensor the config requires, in file order (spec/format.md §7).
func (c Config) Tensors() []TensorSpec {
	d, q, kv, f := c.Dim, c.NHeads*c.HeadDim(), c.KVDim(), c.FFNDim
	specs := []TensorSpec{{"token_embd.weight", []int{c.VocabSize, d}}}
	for l := 0; l < c.NLayers; l++ {
		p := "blk." + strconv.Itoa(l) + "."
		specs = append(specs,
			TensorSpec{p + "attn_norm.weight", []int{d}},
			TensorSpec{p + "attn_q.weight", []int{q, d}},
			TensorSpec{p + "attn_k.weight", []int{kv, d}},
			TensorSpec{p + "attn_v.weight", []int{kv, d}},
			TensorSpec{p + "attn_output.weight", []int{d, q}},
			TensorSpec{p + "ffn_norm.weight", []int{d}},
			TensorSpec{p + "ffn_gate.weight", []int{f, d}},
			TensorSpec{p + "ffn_up.weight", []int{f, d}},
			TensorSpec{p + "ffn_down.weight", []int{d, f}},
		)
	}
	specs = append(specs, TensorSpec{"output_norm.weight", []int{d}})
	if !c.TieEmbeddings {
		specs = append(specs, TensorSpec{"output.weight", []int{c.VocabSize, d}})
	}
	return specs
}

// The metadata keys of spec/format.md §6.1 and the config field each holds:
// the one table that ConfigFromGGUF reads and Metadata writes.
var (
	intKeys = []struct {
		key   string
		field func(*Config) *int
	}{
		{"llama.vocab_size", func(c *Config) *int { return &c.VocabSize }},
		{"llama.context_length", func(c *Config) *int { return &c.ContextLength }},
		{"llama.embedding_length", func(c *Config) *int { return &c.Dim }},
		{"llama.block_count", func(c *Config) *int { return &c.NLayers }},
		{"llama.feed_forward_length", func(c *Config) *int { return &c.FFNDim }},
		{"llama.attention.head_count", func(c *Config) *int { return &c.NHeads }},
		{"llama.attention.head_count_kv", func(c *Config) *int { return &c.NKVHeads }},
	}
	floatKeys = []struct {
		key   string
		field func(*Config) *float64
	}{
		{"llama.rope.freq_base", func(c *Config) *float64 { return &c.RopeTheta }},
		{"llama.attention.layer_norm_rms_epsilon", func(c *Config) *float64 { return &c.NormEps }},
	}
)

// ropeDimsKey holds head_dim, derived from the config rather than a field of
// it: RoPE rotates whole heads (spec/model.md §7.2).
const ropeDimsKey = "llama.rope.dimension_count"

// Defaults that llama.cpp assumes for keys a published file may leave out
// (spec/format.md §6.1): our writers always write them.
const (
	vocabSizeKey     = "llama.vocab_size"     // absent: the length of tokenizer.ggml.tokens
	ropeThetaKey     = "llama.rope.freq_base" // absent: 10000
	defaultRopeTheta = 10000.0
)

// ConfigFromGGUF reads the config from the metadata keys of spec/format.md §6.1.
// tie_embeddings is whether the file lacks output.weight. A feature of the
// llama architecture that goengine does not implement is refused by name.
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return Config{}, err
	}
	if arch != "llama" {
		return Config{}, fmt.Errorf("%s: general.architecture: architecture %q is not supported (goengine runs \"llama\")", f.Path, arch)
	}
	var c Config
	for _, k := range intKeys {
		v, err := f.Uint(k.key)
		if _, present := f.Metadata[k.key]; !present && k.key == vocabSizeKey {
			v, err = vocabSizeFromTokens(f)
		}
		if err != nil {
			return Config{}, err
		}
		if v > 1<<31 {
			return Config{}, fmt.Errorf("%s: %s: value %d is too large", f.Path, k.key, v)
		}
		*k.field(&c) = int(v)
	}
	for _, k := range floatKeys {
		if _, present := f.Metadata[k.key]; !present && k.key == ropeThetaKey {
			*k.field(&c) = defaultRopeTheta
			continue
		}
		if *k.field(&c), err = f.Float(k.key); err != nil {
			return Config{}, err
		}
	}
	_, hasOutput := f.Tensor("output.weight")
	c.TieEmbeddings = !hasOutput
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", f.Path, err)
	}
	if err := checkUnsupported(f, c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// vocabSizeFromTokens is the vocabulary's size when llama.vocab_size is absent.
func vocabSizeFromTokens(f *gguf.File) (uint64, error) {
	v, ok := f.Metadata["tokenizer.ggml.tokens"]
	if !ok || v.Type != gguf.ARRAY {
		return 0, fmt.Errorf("%s: %s: missing, and no tokenizer.ggml.tokens array to count instead", f.Path, vocabSizeKey)
	}
	return uint64(v.Len()), nil
}

// checkUnsupported refuses, by name, the llama-architecture features whose
// math goengine does not implement: rotating part of a head, keys or values of
// another length than dim/n_heads, RoPE scaling other than linear, mixtures
// of experts.
func checkUnsupported(f *gguf.File, c Config) error {
	for _, key := range []string{ropeDimsKey, "llama.attention.key_length", "llama.attention.value_length"} {
		if _, present := f.Metadata[key]; !present {
			continue // llama.cpp's default: head_dim
		}
		v, err := f.Uint(key)
		if err != nil {
			return err
		}
		if v != uint64(c.HeadDim()) {
			return fmt.Errorf("%s: %s: %d is not supported: goengine needs head_dim = dim/n_heads = %d", f.Path, key, v, c.HeadDim())
		}
	}
	if _, present := f.Metadata["llama.rope.scaling.type"]; present {
		scaling, err := f.String("llama.rope.scaling.type")
		if err != nil {
			return err
		}
		if scaling != "none" && scaling != "linear" {
			return fmt.Errorf("%s: llama.rope.scaling.type: rope scaling %q is not supported (none and linear are)", f.Path, scaling)
		}
	}
	if _, present := f.Metadata["llama.expert_count"]; present {
		if n, err := f.Uint("llama.expert_count"); err != nil || n > 0 {
			return fmt.Errorf("%s: llama.expert_count: a mixture of experts is not supported", f.Path)
		}
	}
	return nil
}

// Metadata is the model keys of spec/format.md §6.1 for config c (no tokenizer).
func Metadata(c Config) []gguf.KV {
	kvs := []gguf.KV{{Key: "general.architecture", Value: gguf.Value{Type: gguf.STRING, Str: "llama"}}}
	u32 := func(key string, v int) gguf.KV {
		return gguf.KV{Key: key, Value: gguf.Value{Type: gguf.UINT32, Uint: uint64(v)}}
	}
	for _, k := range intKeys {
		kvs = append(kvs, u32(k.key, *k.field(&c)))
	}
	kvs = append(kvs, u32(ropeDimsKey, c.HeadDim()))
	for _, k := range floatKeys {
		kvs = append(kvs, gguf.KV{Key: k.key, Value: gguf.Value{Type: gguf.FLOAT32, Float: *k.field(&c)}})
	}
	return kvs
}
