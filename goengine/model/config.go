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

// ConfigFromGGUF reads the config from the metadata keys of spec/format.md §6.1.
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return Config{}, err
	}
	if arch != "llama" {
		return Config{}, fmt.Errorf("%s: general.architecture: expected \"llama\", found %q", f.Path, arch)
	}
	var c Config
	ints := []struct {
		key string
		dst *int
	}{
		{"llama.vocab_size", &c.VocabSize},
		{"llama.embedding_length", &c.Dim},
		{"llama.block_count", &c.NLayers},
		{"llama.attention.head_count", &c.NHeads},
		{"llama.attention.head_count_kv", &c.NKVHeads},
		{"llama.feed_forward_length", &c.FFNDim},
		{"llama.context_length", &c.ContextLength},
	}
	for _, k := range ints {
		v, err := f.Uint(k.key)
		if err != nil {
			return Config{}, err
		}
		if v > 1<<31 {
			return Config{}, fmt.Errorf("%s: %s: value %d is too large", f.Path, k.key, v)
		}
		*k.dst = int(v)
	}
	if c.RopeTheta, err = f.Float("llama.rope.freq_base"); err != nil {
		return Config{}, err
	}
	if c.NormEps, err = f.Float("llama.attention.layer_norm_rms_epsilon"); err != nil {
		return Config{}, err
	}
	_, hasOutput := f.Tensor("output.weight")
	c.TieEmbeddings = !hasOutput
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", f.Path, err)
	}
	ropeDims, err := f.Uint("llama.rope.dimension_count")
	if err != nil {
		return Config{}, err
	}
	if ropeDims != uint64(c.HeadDim()) {
		return Config{}, fmt.Errorf("%s: llama.rope.dimension_count: expected head_dim = %d, found %d", f.Path, c.HeadDim(), ropeDims)
	}
	return c, nil
}
