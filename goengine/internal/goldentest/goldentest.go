// Package goldentest is what the tests of both forward passes (package engine,
// the fast path, and package llama, the readable one) and of the loader
// (package model) share to check themselves against the golden files of
// spec/goldens.md: opening them, and the comparison rule of §3 and §5. It
// imports no model code, so that the model package's own tests can use it.
package goldentest

import (
	"fmt"
	"math"
	"testing"

	"gollm/goengine/gguf"
)

// The tolerance of spec/goldens.md §5: |got - golden| <= Atol + Rtol*|golden|.
const Atol, Rtol = 1e-4, 1e-4

// Dir is the goldens' directory, relative to a package directory of goengine.
const Dir = "../../goldens/"

// Open opens goldens/name for the test's duration.
func Open(t testing.TB, name string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(Dir + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Ints reads the I32 tensor name of f (token ids) as ints.
func Ints(t testing.TB, f *gguf.File, name string) []int {
	t.Helper()
	values, err := f.Int32s(name)
	if err != nil {
		t.Fatal(err)
	}
	ints := make([]int, len(values))
	for i, v := range values {
		ints[i] = int(v)
	}
	return ints
}

// Float32s reads the tensor name of f as float32.
func Float32s(t testing.TB, f *gguf.File, name string) []float32 {
	t.Helper()
	values, err := f.Float32s(name)
	if err != nil {
		t.Fatalf("golden %s: %v", name, err)
	}
	return values
}

// Mismatch reports the worst element of got outside the tolerance of want,
// naming the tensor, the index (row and column of rows of cols values) and
// both values, as llm.c's test_gpt2.c does; or "" if all match.
func Mismatch(name string, got, want []float32, cols int) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%s: %d values, golden has %d", name, len(got), len(want))
	}
	worst, bad := -1, 0
	var worstExcess float64
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		excess := math.Abs(g-w) - (Atol + Rtol*math.Abs(w))
		if math.IsNaN(g) {
			excess = math.Inf(1)
		}
		if excess > 0 {
			bad++
			if worst < 0 || excess > worstExcess {
				worst, worstExcess = i, excess
			}
		}
	}
	if bad == 0 {
		return ""
	}
	index := fmt.Sprintf("[%d, %d]", worst/cols, worst%cols)
	if cols == len(want) { // one row: a vector
		index = fmt.Sprintf("[%d]", worst)
	}
	return fmt.Sprintf("%s%s: got %.7g, golden %.7g (%d of %d values off)",
		name, index, got[worst], want[worst], bad, len(want))
}

// RelativeRMS is rms(got - want) / rms(want): how the logits of F16 and Q8_0
// weights are compared with F32 (spec/goldens.md §5, reduced precision).
func RelativeRMS(got, want []float32) float64 {
	var diff, norm float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		diff += d * d
		norm += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(diff / norm)
}
