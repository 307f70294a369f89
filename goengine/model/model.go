package model

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"gollm/goengine/gguf"
)

// Layer holds one block's weights, row-major float32 (spec/format.md §7 names).
type Layer struct {
	AttnNorm []float32 // (dim)
	Wq       []float32 // (n_heads*head_dim, dim)
	Wk       []float32 // (kv_dim, dim)
	Wv       []float32 // (kv_dim, dim)
	Wo       []float32 // (dim, n_heads*head_dim)
	FFNNorm  []float32 // (dim)
	WGate    []float32 // (ffn_dim, dim)
	WUp      []float32 // (ffn_dim, dim)
	WDown    []float32 // (dim, ffn_dim)
}

// Model is a loaded model: config and float32 weights, shared read-only by sessions.
type Model struct {
	Config     Config
	TokenEmbd  []float32 // (vocab_size, dim)
	Layers     []Layer
	OutputNorm []float32 // (dim)
	Output     []float32 // (vocab_size, dim); the same slice as TokenEmbd when tied
	// DTypes records how each tensor was stored in the file ("F32", "F16", "Q8_0").
	DTypes map[string]string

	ropeCos, ropeSin []float32 // (context_length, head_dim/2), built in float64
}

// Load reads and checks a model file (spec/format.md §9 stages 2 and 3) and
// widens every tensor to float32.
func Load(f *gguf.File) (*Model, error) {
	c, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	if err := checkTensors(f, c); err != nil {
		return nil, err
	}
	dtypes := map[string]string{}
	m := assemble(c, func(name string) []float32 {
		if err != nil {
			return nil
		}
		var data []float32
		data, err = f.Float32s(name)
		if t, ok := f.Tensor(name); ok {
			dtypes[name] = t.Type.String()
		}
		return data
	})
	if err != nil {
		return nil, err
	}
	m.DTypes = dtypes
	return m, nil
}

// assemble builds a model of config c from its tensors, fetched by spec name.
func assemble(c Config, tensor func(name string) []float32) *Model {
	m := &Model{Config: c, TokenEmbd: tensor("token_embd.weight")}
	for l := 0; l < c.NLayers; l++ {
		p := "blk." + strconv.Itoa(l) + "."
		m.Layers = append(m.Layers, Layer{
			AttnNorm: tensor(p + "attn_norm.weight"),
			Wq:       tensor(p + "attn_q.weight"),
			Wk:       tensor(p + "attn_k.weight"),
			Wv:       tensor(p + "attn_v.weight"),
			Wo:       tensor(p + "attn_output.weight"),
			FFNNorm:  tensor(p + "ffn_norm.weight"),
			WGate:    tensor(p + "ffn_gate.weight"),
			WUp:      tensor(p + "ffn_up.weight"),
			WDown:    tensor(p + "ffn_down.weight"),
		})
	}
	m.OutputNorm = tensor("output_norm.weight")
	m.Output = m.TokenEmbd
	if !c.TieEmbeddings {
		m.Output = tensor("output.weight")
	}
	m.ropeCos, m.ropeSin = ropeTable(c)
	return m
}

// checkTensors requires exactly the profile's tensors with the config's shapes,
// stored as F32, F16 or Q8_0.
func checkTensors(f *gguf.File, c Config) error {
	want := map[string]bool{}
	for _, spec := range c.Tensors() {
		want[spec.Name] = true
		t, ok := f.Tensor(spec.Name)
		if !ok {
			return fmt.Errorf("%s: missing tensor %s (expected shape %v)", f.Path, spec.Name, spec.Shape)
		}
		if shape := t.Shape(); !slices.Equal(shape, spec.Shape) {
			return fmt.Errorf("%s: tensor %s: expected shape %v, found %v", f.Path, spec.Name, spec.Shape, shape)
		}
		switch t.Type {
		case gguf.F32, gguf.F16, gguf.Q8_0:
		default:
			return fmt.Errorf("%s: tensor %s: type %s is outside the profile (F32, F16, Q8_0)", f.Path, spec.Name, t.Type)
		}
	}
	for _, t := range f.Tensors {
		if !want[t.Name] {
			return fmt.Errorf("%s: unexpected tensor %s (not in the profile for this config)", f.Path, t.Name)
		}
	}
	return nil
}

// ropeTable holds cos and sin of m * theta^(-2i/head_dim) for every position m
// and pair i, computed in float64: m*theta_i in float32 loses precision at large m.
func ropeTable(c Config) (cos, sin []float32) {
	half := c.HeadDim() / 2
	cos = make([]float32, c.ContextLength*half)
	sin = make([]float32, c.ContextLength*half)
	for m := 0; m < c.ContextLength; m++ {
		for i := 0; i < half; i++ {
			angle := float64(m) * math.Pow(c.RopeTheta, -2*float64(i)/float64(c.HeadDim()))
			cos[m*half+i] = float32(math.Cos(angle))
			sin[m*half+i] = float32(math.Sin(angle))
		}
	}
	return cos, sin
}
