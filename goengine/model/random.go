package model

import (
	"math"
	"strconv"

	"gollm/goengine/sampler"
)

// Random builds a model of config c with random weights (matrices uniform with
// the variance of N(0, 1/in_dim), norm weights 1), for benchmarks and tools that
// need a model of some size without a trained file.
func Random(c Config, seed uint64) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	rng := sampler.NewRng(seed)
	m := &Model{Config: c, DTypes: map[string]string{}}
	tensor := func(spec TensorSpec) []float32 {
		n := 1
		for _, d := range spec.Shape {
			n *= d
		}
		data := make([]float32, n)
		if len(spec.Shape) == 1 {
			for i := range data {
				data[i] = 1
			}
			return data
		}
		// uniform on [-a, a] has variance a^2/3; a = sqrt(3/in) gives variance 1/in
		a := math.Sqrt(3 / float64(spec.Shape[1]))
		for i := range data {
			data[i] = float32((2*rng.Uniform() - 1) * a)
		}
		m.DTypes[spec.Name] = "F32"
		return data
	}
	byName := map[string][]float32{}
	for _, spec := range c.Tensors() {
		byName[spec.Name] = tensor(spec)
	}
	m.TokenEmbd, m.OutputNorm = byName["token_embd.weight"], byName["output_norm.weight"]
	m.Output = m.TokenEmbd
	if !c.TieEmbeddings {
		m.Output = byName["output.weight"]
	}
	for l := 0; l < c.NLayers; l++ {
		p := "blk." + strconv.Itoa(l) + "."
		m.Layers = append(m.Layers, Layer{
			AttnNorm: byName[p+"attn_norm.weight"], Wq: byName[p+"attn_q.weight"], Wk: byName[p+"attn_k.weight"],
			Wv: byName[p+"attn_v.weight"], Wo: byName[p+"attn_output.weight"], FFNNorm: byName[p+"ffn_norm.weight"],
			WGate: byName[p+"ffn_gate.weight"], WUp: byName[p+"ffn_up.weight"], WDown: byName[p+"ffn_down.weight"],
		})
	}
	m.ropeCos, m.ropeSin = ropeTable(c)
	return m, nil
}
