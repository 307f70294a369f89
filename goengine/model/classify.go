package model

import (
	"fmt"
	"math"
	"slices"

	"gollm/goengine/gguf"
)

// A classifier is a model file with one key and one tensor more (spec/format.md
// §6.3), llama.cpp's names for a sequence-classification head.
const (
	LabelsKey        = "llama.classifier.output_labels"
	ClassifierTensor = "cls.output.weight"
)

// readLabels is a classifier's labels, or nil when the file has no LabelsKey.
func readLabels(f *gguf.File) ([]string, error) {
	if _, ok := f.Metadata[LabelsKey]; !ok {
		return nil, nil
	}
	labels, err := f.Strings(LabelsKey)
	if err != nil {
		return nil, err
	}
	if len(labels) < 2 {
		return nil, fmt.Errorf("%s: %s: a classifier needs at least two labels, found %d", f.Path, LabelsKey, len(labels))
	}
	for i, label := range labels {
		if label == "" {
			return nil, fmt.Errorf("%s: %s: label %d is empty", f.Path, LabelsKey, i)
		}
		if slices.Index(labels[:i], label) >= 0 {
			return nil, fmt.Errorf("%s: %s: label %q appears twice", f.Path, LabelsKey, label)
		}
	}
	return labels, nil
}

// checkClassifier requires the head and the labels together, a row per label.
func checkClassifier(f *gguf.File, c Config, nClasses int) error {
	t, ok := f.Tensor(ClassifierTensor)
	want := []int{nClasses, c.Dim}
	switch {
	case ok && nClasses == 0:
		return fmt.Errorf("%s: tensor %s (a classifier head) without the key %s", f.Path, ClassifierTensor, LabelsKey)
	case !ok && nClasses > 0:
		return fmt.Errorf("%s: key %s (a classifier's %d labels) without its head, tensor %s of shape %v",
			f.Path, LabelsKey, nClasses, ClassifierTensor, want)
	case ok && !slices.Equal(t.Shape(), want):
		return fmt.Errorf("%s: tensor %s: expected shape %v (a row per label of %s, dim %d), found %v",
			f.Path, ClassifierTensor, want, LabelsKey, c.Dim, t.Shape())
	}
	return nil
}

// Prediction is a classifier's answer for one input.
type Prediction struct {
	Logits []float32 // (n_classes) cls.output.weight · h
	Probs  []float64 // softmax of Logits, computed in float64
	Label  string    // the label of the largest logit (the first on ties)
}

// Classify runs tokens through the model from position 0, starting the session
// over, and classifies the final-norm hidden state h of the last one: the
// logits are cls.output.weight · h (spec/format.md §6.3). A classifier's input
// is BOS and then the text encoded as ordinary text, so its last id is the
// text's last real token.
func (s *Session) Classify(tokens []int) (Prediction, error) {
	m := s.m
	if m.Classifier == nil {
		return Prediction{}, fmt.Errorf("not a classifier (no %s)", LabelsKey)
	}
	s.Reset()
	h, err := s.Hidden(tokens)
	if err != nil {
		return Prediction{}, err
	}
	logits := make([]float32, len(m.Labels))
	m.pool.MatVec(logits, h, m.Classifier)
	best := 0
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return Prediction{}, fmt.Errorf("class logit %d (%s) is %v: the weights are broken", i, m.Labels[i], v)
		}
		if v > logits[best] {
			best = i
		}
	}
	return Prediction{Logits: logits, Probs: softmax64(logits), Label: m.Labels[best]}, nil
}

// softmax64 is exp(x - max x) / sum, in float64.
func softmax64(x []float32) []float64 {
	top := float64(slices.Max(x))
	p := make([]float64, len(x))
	var sum float64
	for i, v := range x {
		p[i] = math.Exp(float64(v) - top)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}
