package model

import (
	"math"

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
	dtypes := map[string]string{}
	random := func(spec TensorSpec) []float32 {
		n := 1
		for _, d := range spec.Shape {
			n *= d
		}
		data := make([]float32, n)
		dtypes[spec.Name] = "F32"
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
		return data
	}
	byName := map[string][]float32{}
	for _, spec := range c.Tensors() {
		byName[spec.Name] = random(spec)
	}
	m := assemble(c, func(name string) []float32 { return byName[name] })
	m.DTypes = dtypes
	return m, nil
}
