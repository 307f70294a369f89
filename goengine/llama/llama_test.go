package llama

import (
	"fmt"
	"slices"
	"testing"

	"gollm/goengine/gguf"
	"gollm/goengine/internal/goldentest"
	"gollm/goengine/model"
)

func load(t *testing.T, name string) *model.Model {
	t.Helper()
	m, err := model.Load(goldentest.Open(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGoldenLogits runs the golden tokens one at a time through Forward and
// compares every position's final norm and logits with the goldens.
//
// quants (spec/goldens.md §2.6) has every matrix in another of ggml's types,
// dequantized row by row as Forward goes; its goldens are within the same
// float32 tolerance, as the reference multiplies the same dequantized values.
func TestGoldenLogits(t *testing.T) {
	for _, name := range []string{"gqa", "mha", "quants", "rope"} {
		t.Run(name, func(t *testing.T) {
			m := load(t, name+".gguf")
			golden := goldentest.Open(t, name+".activations.gguf")
			tokens := goldentest.Ints(t, golden, "tokens")
			s := NewRunState(m.Config)
			var norms, logits []float32
			for pos, token := range tokens {
				logits = append(logits, Forward(m, s, token, pos)...)
				norms = append(norms, s.H...)
			}
			for _, c := range []struct {
				key string
				got []float32
			}{{"output_norm", norms}, {"logits", logits}} {
				want := goldentest.Float32s(t, golden, c.key)
				if msg := goldentest.Mismatch(name+".activations.gguf: "+c.key, c.got, want, len(want)/len(tokens)); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}

// TestGoldenBlocks walks the forward pass step by step, as Hidden does, and
// after each block compares the run state's named buffers with the goldens
// of the same names (spec/goldens.md §2.2): the ones a block leaves holding
// its last value (attn_norm, attn_out and attn_resid are overwritten by the
// feed-forward half).
//
// rope (spec/goldens.md §2.7) turns RoPE with frequency factors and linear
// scaling, which q_rope and k_rope show first.
func TestGoldenBlocks(t *testing.T) {
	for _, name := range []string{"gqa", "mha", "rope"} {
		t.Run(name, func(t *testing.T) {
			m := load(t, name+".gguf")
			golden := goldentest.Open(t, name+".activations.gguf")
			tokens := goldentest.Ints(t, golden, "tokens")
			s := NewRunState(m.Config)
			got := map[string][]float32{}
			var order []string
			record := func(key string, value []float32) {
				if _, seen := got[key]; !seen {
					order = append(order, key)
				}
				got[key] = append(got[key], value...)
			}
			for pos, token := range tokens {
				m.TokenEmbd.Row(s.X, token)
				record("embeddings", s.X)
				for l := range m.Layers {
					Block(m, s, l, pos)
					p := fmt.Sprintf("blk.%d.", l)
					for _, b := range []struct {
						key   string
						value []float32
					}{{"q_rope", s.Q}, {"k_rope", s.K}, {"v", s.V}, {"attn", s.Attn},
						{"ffn_norm", s.H}, {"ffn_hidden", s.Gate}, {"ffn_out", s.Out}, {"out", s.X}} {
						record(p+b.key, b.value)
					}
				}
			}
			for _, key := range order {
				want := goldentest.Float32s(t, golden, key)
				if msg := goldentest.Mismatch(name+".activations.gguf: "+key, got[key], want, len(want)/len(tokens)); msg != "" {
					t.Fatal(msg) // later tensors inherit the error: report the first
				}
			}
		})
	}
}

// TestGoldenDecode feeds the golden prompt, then decodes greedily: the same
// tokens exactly, the same logits within tolerance (spec/goldens.md §2.2).
func TestGoldenDecode(t *testing.T) {
	for _, name := range []string{"gqa", "mha", "quants", "rope"} {
		t.Run(name, func(t *testing.T) {
			m := load(t, name+".gguf")
			golden := goldentest.Open(t, name+".activations.gguf")
			prompt := goldentest.Ints(t, golden, "decode.prompt")
			wantTokens := goldentest.Ints(t, golden, "decode.tokens")
			wantLogits := goldentest.Float32s(t, golden, "decode.logits")
			s := NewRunState(m.Config)
			var logits []float32
			for pos, token := range prompt {
				logits = Forward(m, s, token, pos)
			}
			V := m.Config.VocabSize
			for i, want := range wantTokens {
				if msg := goldentest.Mismatch(fmt.Sprintf("decode.logits step %d", i), logits, wantLogits[i*V:(i+1)*V], V); msg != "" {
					t.Fatal(msg)
				}
				token := argmax(logits)
				if token != want {
					t.Fatalf("decode step %d: token %d, golden %d", i, token, want)
				}
				logits = Forward(m, s, token, len(prompt)+i)
			}
		})
	}
}

// argmax is greedy sampling: the largest logit, the lowest id on ties.
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// TestGoldenClassifier classifies each golden case's tokens (spec/goldens.md
// §2.5): the final-norm hidden state and the logits within tolerance, the
// label exactly.
func TestGoldenClassifier(t *testing.T) {
	const file = "classifier.cases.gguf"
	m := load(t, "classifier.gguf")
	golden := goldentest.Open(t, file)
	count, err := golden.Uint("classifier.count")
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < int(count); k++ {
		name := func(what string) string { return fmt.Sprintf("classifier.%d.%s", k, what) }
		s := NewRunState(m.Config)
		logits := Classify(m, s, goldentest.Ints(t, golden, name("tokens")))
		for _, c := range []struct {
			what string
			got  []float32
		}{{"output_norm", s.H}, {"logits", logits}} {
			want := goldentest.Float32s(t, golden, name(c.what))
			if msg := goldentest.Mismatch(file+": "+name(c.what), c.got, want, len(want)); msg != "" {
				t.Error(msg)
			}
		}
		if label, _ := golden.String(name("label")); m.Labels[argmax(logits)] != label {
			t.Errorf("%s: %s: got %q, golden %q", file, name("label"), m.Labels[argmax(logits)], label)
		}
	}
}

// TestStoredTypes: MatVec reads every stored type, so a random model stored as
// F16 or Q8_0 gives nearly the logits of the same model in F32.
func TestStoredTypes(t *testing.T) {
	c := model.Config{VocabSize: 256, Dim: 64, NLayers: 2, NHeads: 4, NKVHeads: 2, FFNDim: 128,
		ContextLength: 16, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: true}
	logitsOf := func(typ gguf.TensorType) []float32 {
		m, err := model.Random(c, typ, 7)
		if err != nil {
			t.Fatal(err)
		}
		s := NewRunState(c)
		var all []float32
		for pos, token := range []int{5, 17, 200, 3, 99} {
			all = append(all, slices.Clone(Forward(m, s, token, pos))...)
		}
		return all
	}
	f32 := logitsOf(gguf.F32)
	for typ, bound := range map[gguf.TensorType]float64{gguf.F16: 0.005, gguf.Q8_0: 0.05} {
		if e := goldentest.RelativeRMS(logitsOf(typ), f32); e > bound {
			t.Errorf("%s: logits differ from F32 by %.3g relative RMS, bound %.3g", typ, e, bound)
		}
	}
}
