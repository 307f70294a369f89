package engine

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"gollm/goengine/gguf"
	"gollm/goengine/internal/goldentest"
	"gollm/goengine/model"
	"gollm/goengine/tensor"
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
			m, err := model.Load(f)
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
			s := NewSession(m)
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
				h, err := NewSession(m).Hidden(ids)
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

// TestClassifyNeedsAClassifier: a language model has no head to classify with.
func TestClassifyNeedsAClassifier(t *testing.T) {
	lm := loadGolden(t, "gqa")
	if _, err := NewSession(lm).Classify([]int{312}); err == nil || !strings.Contains(err.Error(), "not a classifier") {
		t.Errorf("Classify on a language model: err = %v", err)
	}
}

// classifierWithHead loads goldens/classifier.gguf rewritten with the model
// keys of its config (no tokenizer), its labels and its tensors, the head
// stored as typ (package model's tests rewrite the file the same way to check
// the loader).
func classifierWithHead(t *testing.T, typ gguf.TensorType) *model.Model {
	t.Helper()
	f := goldentest.Open(t, "classifier.gguf")
	c, err := model.ConfigFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	labels, err := f.Strings(model.LabelsKey)
	if err != nil {
		t.Fatal(err)
	}
	kvs := append(model.Metadata(c), gguf.KV{Key: model.LabelsKey, Value: gguf.Value{Type: gguf.ARRAY, ElemType: gguf.STRING, Strs: labels}})
	var tensors []gguf.TensorToWrite
	for _, info := range f.Tensors {
		w := gguf.TensorToWrite{Name: info.Name, Shape: info.Shape(), Type: info.Type, Data: f.TensorData(&info)}
		if info.Name == model.ClassifierTensor {
			values, err := f.Float32s(info.Name)
			if err != nil {
				t.Fatal(err)
			}
			w.Type = typ
			if w.Data, err = gguf.Quantize(values, typ); err != nil {
				t.Fatal(err)
			}
		}
		tensors = append(tensors, w)
	}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	parsed, err := gguf.Parse(buf.Bytes(), "c.gguf")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(parsed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestClassifierHeadTypes: a head stored as F16 or Q8_0 loads and classifies
// close to the F32 one (the bounds of spec/goldens.md §5 for rounded weights).
func TestClassifierHeadTypes(t *testing.T) {
	stored := map[gguf.TensorType]tensor.DType{gguf.F32: tensor.F32, gguf.F16: tensor.F16, gguf.Q8_0: tensor.Q8_0}
	ids := []int{312, 79, 110, 99, 101, 286}
	logitsOf := func(typ gguf.TensorType) []float32 {
		m := classifierWithHead(t, typ)
		if m.Classifier.Type != stored[typ] {
			t.Fatalf("head stored as %s loads as %s", typ, m.Classifier.Type)
		}
		got, err := NewSession(m).Classify(ids)
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
