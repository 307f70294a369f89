package model

import (
	"fmt"
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
