package model

import (
	"bytes"
	"strings"
	"testing"

	"gollm/goengine/gguf"
	"gollm/goengine/internal/goldentest"
)

// classifierFile is goldens/classifier.gguf rewritten with the model keys of
// its config (no tokenizer), the given labels key (none if nil) and its
// tensors, the head changed by head (dropped if it returns nil).
func classifierFile(t *testing.T, labels *gguf.Value, head func(values []float32) *gguf.TensorToWrite) []byte {
	t.Helper()
	f := goldentest.Open(t, "classifier.gguf")
	c, err := ConfigFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	kvs := Metadata(c)
	if labels != nil {
		kvs = append(kvs, gguf.KV{Key: LabelsKey, Value: *labels})
	}
	var tensors []gguf.TensorToWrite
	for _, info := range f.Tensors {
		w := &gguf.TensorToWrite{Name: info.Name, Shape: info.Shape(), Type: info.Type, Data: f.TensorData(&info)}
		if info.Name == ClassifierTensor {
			values, err := f.Float32s(info.Name)
			if err != nil {
				t.Fatal(err)
			}
			if w = head(values); w == nil {
				continue
			}
		}
		tensors = append(tensors, *w)
	}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func stringArray(s ...string) *gguf.Value {
	return &gguf.Value{Type: gguf.ARRAY, ElemType: gguf.STRING, Strs: s}
}

// headOf stores the first rows of the golden head as typ.
func headOf(t *testing.T, rows int, typ gguf.TensorType) func([]float32) *gguf.TensorToWrite {
	return func(values []float32) *gguf.TensorToWrite {
		dim := len(values) / 4
		data, err := gguf.Quantize(values[:rows*dim], typ)
		if err != nil {
			t.Fatal(err)
		}
		return &gguf.TensorToWrite{Name: ClassifierTensor, Shape: []int{rows, dim}, Type: typ, Data: data}
	}
}

// TestClassifierFiles: the labels key and the head come together, a row per
// label, the labels at least two, none empty, none repeated; each error names
// the file and the key or tensor.
func TestClassifierFiles(t *testing.T) {
	four := stringArray("alpha", "beta", "gamma", "δέλτα")
	noHead := func([]float32) *gguf.TensorToWrite { return nil }
	for _, c := range []struct {
		labels *gguf.Value
		head   func([]float32) *gguf.TensorToWrite
		want   string
	}{
		{nil, headOf(t, 4, gguf.F32), "c.gguf: tensor cls.output.weight (a classifier head) without the key llama.classifier.output_labels"},
		{four, noHead, "c.gguf: key llama.classifier.output_labels (a classifier's 4 labels) without its head, tensor cls.output.weight of shape [4 32]"},
		{four, headOf(t, 3, gguf.F32), "c.gguf: tensor cls.output.weight: expected shape [4 32] (a row per label of llama.classifier.output_labels, dim 32), found [3 32]"},
		{stringArray("alpha", "beta", "gamma"), headOf(t, 4, gguf.F32), "expected shape [3 32] (a row per label"},
		{stringArray("alpha"), headOf(t, 1, gguf.F32), "c.gguf: llama.classifier.output_labels: a classifier needs at least two labels, found 1"},
		{stringArray(), noHead, "a classifier needs at least two labels, found 0"},
		{stringArray("alpha", "", "gamma", "δέλτα"), headOf(t, 4, gguf.F32), "c.gguf: llama.classifier.output_labels: label 1 is empty"},
		{stringArray("alpha", "beta", "alpha", "δέλτα"), headOf(t, 4, gguf.F32), `c.gguf: llama.classifier.output_labels: label "alpha" appears twice`},
		{&gguf.Value{Type: gguf.STRING, Str: "alpha"}, headOf(t, 4, gguf.F32), `c.gguf: key "llama.classifier.output_labels": type: expected ARRAY of STRING, found STRING`},
	} {
		f, err := gguf.Parse(classifierFile(t, c.labels, c.head), "c.gguf")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Load(f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}

	// Without either, the file is the language model it was trained from.
	f, _ := gguf.Parse(classifierFile(t, nil, noHead), "lm.gguf")
	lm, err := Load(f)
	if err != nil || lm.Labels != nil || lm.Classifier != nil {
		t.Fatalf("no labels, no head: %v, labels %v", err, lm.Labels)
	}
}
