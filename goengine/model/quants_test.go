package model

import (
	"testing"

	"gollm/goengine/gguf"
	"gollm/goengine/internal/goldentest"
	"gollm/goengine/tensor"
)

// TestGoldenQuantRows decodes the first rows of every matrix of
// goldens/quants.gguf, each in another of ggml's types (spec/goldens.md §2.6),
// and compares them with gguf-py's dequantization of the same bytes: equal to
// the bit, since both follow ggml-quants.c's float32 operations in order.
func TestGoldenQuantRows(t *testing.T) {
	m := loadGolden(t, "quants")
	golden := goldentest.Open(t, "quants.activations.gguf")
	seen := map[gguf.TensorType]bool{}
	for name, w := range m.Matrices() {
		want := goldentest.Float32s(t, golden, "rows."+name)
		got := make([]float32, len(want))
		for r := 0; r < len(want)/w.Cols; r++ {
			w.Row(got[r*w.Cols:(r+1)*w.Cols], r)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s (%s): value %d of its first rows is %v, gguf-py's %v", name, typeOf(w), i, got[i], want[i])
				break
			}
		}
		seen[typeOf(w)] = true
	}
	for _, typ := range WeightTypes {
		if !seen[typ] && typ != gguf.F32 && typ != gguf.Q8_0 {
			t.Errorf("no matrix of quants.gguf is %s", typ)
		}
	}
}

// typeOf is the ggml type a matrix was stored in.
func typeOf(w *tensor.Matrix) gguf.TensorType {
	switch w.Type {
	case tensor.F32:
		return gguf.F32
	case tensor.F16:
		return gguf.F16
	case tensor.Q8_0:
		return gguf.Q8_0
	}
	return w.Quant
}
