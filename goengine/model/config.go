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

// ConfigFromGGUF reads the config from the metadata keys of spec/format.md §6.1.
// tie_embeddings is whether the file lacks output.weight.
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return Config{}, err
	}
	if arch != "llama" {
		return Config{}, fmt.Errorf("%s: general.architecture: expected \"llama\", found %q", f.Path, arch)
	}
	var c Config
	for _, k := range intKeys {
		v, err := f.Uint(k.key)
		if err != nil {
			return Config{}, err
		}
		if v > 1<<31 {
			return Config{}, fmt.Errorf("%s: %s: value %d is too large", f.Path, k.key, v)
		}
		*k.field(&c) = int(v)
	}
	for _, k := range floatKeys {
		if *k.field(&c), err = f.Float(k.key); err != nil {
			return Config{}, err
		}
	}
	_, hasOutput := f.Tensor("output.weight")
	c.TieEmbeddings = !hasOutput
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", f.Path, err)
	}
	ropeDims, err := f.Uint(ropeDimsKey)
	if err != nil {
		return Config{}, err
	}
	if ropeDims != uint64(c.HeadDim()) {
		return Config{}, fmt.Errorf("%s: %s: expected head_dim = %d, found %d", f.Path, ropeDimsKey, c.HeadDim(), ropeDims)
	}
	return c, nil
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
