package model

import (
	"bytes"
	"fmt"
	"math"

	"gollm/goengine/gguf"
	"gollm/goengine/sampler"
)

// RandomFile encodes a model file of config c with random weights stored as typ
// (F32, F16 or Q8_0): matrices uniform with the variance of N(0, 1/in_dim),
// norm weights 1 (kept F32, as export does). Benchmarks and tools use it to
// measure a model of any size without training one.
func RandomFile(c Config, typ gguf.TensorType, seed uint64) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if typ != gguf.F32 && typ != gguf.F16 && typ != gguf.Q8_0 {
		return nil, fmt.Errorf("random weights are F32, F16 or Q8_0, not %s", typ)
	}
	if typ == gguf.Q8_0 && (c.Dim%32 != 0 || c.FFNDim%32 != 0) {
		return nil, fmt.Errorf("Q8_0 needs dim and ffn_dim divisible by 32 (its block size); found %d and %d", c.Dim, c.FFNDim)
	}
	rng := sampler.NewRng(seed)
	var tensors []gguf.TensorToWrite
	for _, spec := range c.Tensors() {
		n := 1
		for _, d := range spec.Shape {
			n *= d
		}
		values := make([]float32, n)
		stored := typ
		if len(spec.Shape) == 1 {
			stored = gguf.F32
			for i := range values {
				values[i] = 1
			}
		} else {
			// uniform on [-a, a] has variance a^2/3; a = sqrt(3/in) gives variance 1/in
			a := math.Sqrt(3 / float64(spec.Shape[1]))
			for i := range values {
				values[i] = float32((2*rng.Uniform() - 1) * a)
			}
		}
		data, err := gguf.Quantize(values, stored)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, gguf.TensorToWrite{Name: spec.Name, Shape: spec.Shape, Type: stored, Data: data})
	}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, Metadata(c), tensors); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Random builds a model of config c with random weights of type typ (see
// RandomFile), loaded from memory through the same path as a file.
func Random(c Config, typ gguf.TensorType, seed uint64) (*Model, error) {
	data, err := RandomFile(c, typ, seed)
	if err != nil {
		return nil, err
	}
	f, err := gguf.Parse(data, "random.gguf")
	if err != nil {
		return nil, err
	}
	return Load(f)
}
