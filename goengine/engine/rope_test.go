package engine

import (
	"fmt"
	"testing"

	"gollm/goengine/internal/goldentest"
	"gollm/goengine/sampler"
)

// TestGoldenRoPE runs goldens/rope.gguf (spec/goldens.md §2.7: RoPE frequency
// factors and linear scaling, as published LLaMA 3.1/3.2 and interpolated
// files have) through the fast path, whose RoPE table holds them: every
// traced activation and the logits as one prompt and token by token, then the
// greedy decode, at every kernel level.
func TestGoldenRoPE(t *testing.T) {
	atEachKernelLevel(t, func(t *testing.T) {
		m := loadGolden(t, "rope")
		if m.RopeFreqs == nil || m.RopeScale != 4 {
			t.Fatalf("rope.gguf loaded with frequency factors %v and scale %v; want 4 factors and 4", m.RopeFreqs, m.RopeScale)
		}
		golden := goldentest.Open(t, "rope.activations.gguf")
		tokens := goldentest.Ints(t, golden, "tokens")
		for _, mode := range []string{"prompt", "token by token"} {
			got := map[string][]float32{}
			s := NewSession(m)
			s.Trace = func(key string, _ int, value []float32) { got[key] = append(got[key], value...) }
			run(t, s, tokens, mode)
			for _, key := range []string{"blk.0.q_rope", "blk.0.k_rope", "blk.1.q_rope", "logits"} {
				want := goldentest.Float32s(t, golden, key)
				if msg := goldentest.Mismatch(fmt.Sprintf("%s (%s)", key, mode), got[key], want, len(want)/len(tokens)); msg != "" {
					t.Fatal(msg)
				}
			}
		}
		prompt := goldentest.Ints(t, golden, "decode.prompt")
		wantTokens := goldentest.Ints(t, golden, "decode.tokens")
		greedy, _ := sampler.New(0, 0, 1, 0)
		s := NewSession(m)
		logits, err := s.Prefill(prompt)
		for i, want := range wantTokens {
			if err != nil {
				t.Fatal(err)
			}
			token, _ := greedy.Sample(logits)
			if token != want {
				t.Fatalf("decode step %d: token %d, golden %d", i, token, want)
			}
			logits, err = s.DecodeStep(token)
		}
	})
}
