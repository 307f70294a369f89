package model

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"gollm/goengine/gguf"
	"gollm/goengine/internal/goldentest"
	"gollm/goengine/tokenizer"
)

// TestGoldenClassifier encodes each golden text by the classifier's input rule
// (BOS, then the text as ordinary text) and classifies it: the same ids and
// label exactly, the same final-norm hidden state, logits and probabilities
// within tolerance (spec/goldens.md §2.5); as one prompt and in batches of 5.
// One session runs every case, so each Classify must start it over.
func TestGoldenClassifier(t *testing.T) {
	atEachKernelLevel(t, checkGoldenClassifier)
}

func checkGoldenClassifier(t *testing.T) {
	const file = "classifier.cases.gguf"
	for _, mode := range []string{"prompt", "batches of 5"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "batches of 5" {
				defer func(saved int) { maxBatch = saved }(maxBatch)
				maxBatch = 5
			}
			f := goldentest.Open(t, "classifier.gguf")
			m, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := tokenizer.FromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			golden := goldentest.Open(t, file)
			count, err := golden.Uint("classifier.count")
			if err != nil || count != 5 {
				t.Fatalf("classifier.count: %d, %v", count, err)
			}
			s := m.NewSession()
			for k := 0; k < int(count); k++ {
				name := func(what string) string { return fmt.Sprintf("classifier.%d.%s", k, what) }
				text, err := golden.String(name("text"))
				if err != nil {
					t.Fatal(err)
				}
				ids, err := tok.Encode(text)
				if err != nil {
					t.Fatal(err)
				}
				ids = append([]int{tok.BOS}, ids...)
				if want := goldentest.Ints(t, golden, name("tokens")); !slices.Equal(ids, want) {
					t.Fatalf("%s: %s: %q encodes to %v, golden %v", file, name("tokens"), text, ids, want)
				}
				// The hidden state through Hidden, then everything through Classify in
				// the same session, which the hidden state's run has moved past 0.
				h, err := m.NewSession().Hidden(ids)
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.Classify(ids)
				if err != nil {
					t.Fatal(err)
				}
				probs := make([]float32, len(got.Probs))
				for i, p := range got.Probs {
					probs[i] = float32(p)
				}
				for _, c := range []struct {
					what string
					got  []float32
				}{{"output_norm", h}, {"logits", got.Logits}, {"probs", probs}} {
					want, err := golden.Float32s(name(c.what))
					if err != nil {
						t.Fatal(err)
					}
					if msg := goldentest.Mismatch(file+": "+name(c.what), c.got, want, len(want)); msg != "" {
						t.Fatal(msg)
					}
				}
				if want, _ := golden.String(name("label")); got.Label != want {
					t.Fatalf("%s: %s: got %q, golden %q", file, name("label"), got.Label, want)
				}
			}
		})
	}
}

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
	if _, err := lm.NewSession().Classify([]int{312}); err == nil || !strings.Contains(err.Error(), "not a classifier") {
		t.Errorf("Classify on a language model: err = %v", err)
	}
}

// TestClassifierHeadTypes: a head stored as F16 or Q8_0 loads and classifies
// close to the F32 one (the bounds of spec/goldens.md §5 for rounded weights).
func TestClassifierHeadTypes(t *testing.T) {
	four := stringArray("alpha", "beta", "gamma", "δέλτα")
	ids := []int{312, 79, 110, 99, 101, 286}
	logitsOf := func(typ gguf.TensorType) []float32 {
		f, err := gguf.Parse(classifierFile(t, four, headOf(t, 4, typ)), "c.gguf")
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if m.Classifier.Type != dtypes[typ] {
			t.Fatalf("head stored as %s loads as %s", typ, m.Classifier.Type)
		}
		got, err := m.NewSession().Classify(ids)
		if err != nil {
			t.Fatal(err)
		}
		return got.Logits
	}
	reference := logitsOf(gguf.F32)
	for typ, bound := range map[gguf.TensorType]float64{gguf.F16: 0.01, gguf.Q8_0: 0.05} {
		if e := goldentest.RelativeRMS(logitsOf(typ), reference); e > bound || e == 0 {
			t.Errorf("%s head: class logits differ from F32 by %.3g relative RMS, want (0, %g]", typ, e, bound)
		}
	}
}
