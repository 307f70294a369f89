package engine

import (
	"fmt"
	"math"
	"slices"

	"gollm/goengine/model"
)

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
		return Prediction{}, fmt.Errorf("not a classifier (no %s)", model.LabelsKey)
	}
	s.Reset()
	h, err := s.Hidden(tokens)
	if err != nil {
		return Prediction{}, err
	}
	logits := make([]float32, len(m.Labels))
	m.Pool().MatVec(logits, h, m.Classifier)
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
