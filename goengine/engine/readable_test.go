package engine

import (
	"fmt"
	"testing"

	"gollm/goengine/gguf"
	"gollm/goengine/internal/goldentest"
	"gollm/goengine/llama"
	"gollm/goengine/model"
)

// TestFastMatchesReadable runs random models of every stored type, and
// goldens/quants.gguf (every other ggml type), through the fast path (a
// Session: a prompt prefilled in one batch, then decode steps) and through the
// readable one (package llama, a token at a time, float activations
// throughout), at every kernel level: the same logits after the prompt and
// after each step. They agree within the goldens' tolerance, except where the
// fast path quantises the activations of every product of a few tokens (the
// decode steps, and the prompt's last row through the head) as llama.cpp does
// (spec/model.md §11): Q8_0 is held to the relative RMS bound of
// spec/goldens.md §5, quants to quantsDecodeBound (forward_test.go).
func TestFastMatchesReadable(t *testing.T) {
	atEachKernelLevel(t, checkFastMatchesReadable)
}

func checkFastMatchesReadable(t *testing.T) {
	c := model.Config{VocabSize: 256, Dim: 64, NLayers: 2, NHeads: 4, NKVHeads: 2, FFNDim: 128,
		ContextLength: 32, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: false}
	prompt, steps := []int{5, 17, 200, 3, 99, 42, 7, 128, 64, 1, 250, 0}, []int{9, 33, 77, 180}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.Q8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			m, err := model.Random(c, typ, 3)
			if err != nil {
				t.Fatal(err)
			}
			bound := map[gguf.TensorType]float64{gguf.F32: 0, gguf.F16: 0, gguf.Q8_0: 0.05}[typ]
			fastAndReadable(t, m, prompt, steps, bound)
		})
	}
	t.Run("quants", func(t *testing.T) {
		fastAndReadable(t, loadGolden(t, "quants"), prompt, steps, quantsDecodeBound)
	})
}

// fastAndReadable compares the two paths' logits for prompt, then each of
// steps: within the goldens' tolerance, or relative RMS bound if it is not 0.
func fastAndReadable(t *testing.T, m *model.Model, prompt, steps []int, bound float64) {
	t.Helper()
	fast, readable := NewSession(m), llama.NewRunState(m.Config)
	got, err := fast.Prefill(prompt)
	if err != nil {
		t.Fatal(err)
	}
	var want []float32
	for pos, token := range prompt {
		want = llama.Forward(m, readable, token, pos)
	}
	compare(t, "prefill", bound, got, want)
	for i, token := range steps {
		if got, err = fast.DecodeStep(token); err != nil {
			t.Fatal(err)
		}
		want = llama.Forward(m, readable, token, len(prompt)+i)
		compare(t, fmt.Sprintf("decode step %d", i), bound, got, want)
	}
}

func compare(t *testing.T, what string, bound float64, got, want []float32) {
	t.Helper()
	if bound > 0 {
		if e := goldentest.RelativeRMS(got, want); e > bound {
			t.Errorf("%s: fast and readable logits differ by %.3g relative RMS, bound %.3g", what, e, bound)
		}
		return
	}
	if msg := goldentest.Mismatch(what+" logits, fast vs readable", got, want, len(want)); msg != "" {
		t.Error(msg)
	}
}
