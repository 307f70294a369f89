// Package llama is the forward pass of spec/model.md written to be read, as
// llama2.c's run.c is: one token at a time, one function per step of the spec,
// the state in named buffers allocated once, and nothing the math does not
// need: no pool, no batches, no tracing, no transposed cache.
//
// It computes what the fast path (package engine: sessions, chunked prefill,
// batched decode, the pool) computes, and the goldens bind both. Read it next
// to spec/model.md; the weights come from model.Load, shared with the fast path.
//
//	m, _ := model.Load(f)
//	s := llama.NewRunState(m.Config)
//	for pos, token := range tokens {
//		logits := llama.Forward(m, s, token, pos)
//	}
package llama

import (
	"math"

	"gollm/goengine/model"
	"gollm/goengine/tensor"
)

// RunState holds the activations of one token and the KV cache of one
// sequence, named as in spec/model.md §7–§10 and allocated once.
type RunState struct {
	X      []float32 // (dim) the residual stream x
	H      []float32 // (dim) rms_norm(x): the input of a sublayer
	Q      []float32 // (n_heads*head_dim) the query of every head
	K      []float32 // (kv_dim) the key of every KV head
	V      []float32 // (kv_dim) the value of every KV head
	Attn   []float32 // (n_heads*head_dim) attention output, heads concatenated, before W_o
	Out    []float32 // (dim) a sublayer's output: attn_out, then ffn_out
	Gate   []float32 // (ffn_dim) h W_gateᵀ, then silu(h W_gateᵀ) ⊙ (h W_upᵀ)
	Up     []float32 // (ffn_dim) h W_upᵀ
	Scores []float32 // (context_length) one head's attention weights over positions 0..pos
	Logits []float32 // (vocab_size)

	// The KV cache of §10, one slice per layer in the spec's own layout:
	// (context_length, n_kv_heads, head_dim), row p holding position p.
	KeyCache, ValueCache [][]float32
}

// NewRunState allocates the buffers and the cache for a model of config c.
func NewRunState(c model.Config) *RunState {
	q := c.NHeads * c.HeadDim()
	s := &RunState{
		X: make([]float32, c.Dim), H: make([]float32, c.Dim), Out: make([]float32, c.Dim),
		Q: make([]float32, q), Attn: make([]float32, q),
		K: make([]float32, c.KVDim()), V: make([]float32, c.KVDim()),
		Gate: make([]float32, c.FFNDim), Up: make([]float32, c.FFNDim),
		Scores: make([]float32, c.ContextLength), Logits: make([]float32, c.VocabSize),
	}
	for l := 0; l < c.NLayers; l++ {
		s.KeyCache = append(s.KeyCache, make([]float32, c.ContextLength*c.KVDim()))
		s.ValueCache = append(s.ValueCache, make([]float32, c.ContextLength*c.KVDim()))
	}
	return s
}

// Forward runs token at position pos through the model (spec/model.md §9) and
// returns the logits for the next token, s.Logits. Positions 0..pos-1 must be
// in the cache already: call Forward for each token of a sequence in order, as
// §10's decode_step. The token and position must be in range.
func Forward(m *model.Model, s *RunState, token, pos int) []float32 {
	Hidden(m, s, token, pos)
	MatVec(s.Logits, s.H, &m.Output) // W_out: output.weight, or token_embd.weight when tied
	return s.Logits
}

// Hidden is Forward without the head: it leaves in s.H, and returns, the
// final-norm hidden state rms_norm(x, output_norm) that the lm head and a
// classifier's head read.
func Hidden(m *model.Model, s *RunState, token, pos int) []float32 {
	c := m.Config
	m.TokenEmbd.Row(s.X, token) // §5: x = token_embd[token]
	for l := range m.Layers {
		Block(m, s, l, pos)
	}
	RMSNorm(s.H, s.X, m.OutputNorm, c.NormEps)
	return s.H
}

// Block is one transformer block (§9) on the residual stream s.X:
// x = x + attention(rms_norm(x)); x = x + swiglu(rms_norm(x)).
func Block(m *model.Model, s *RunState, l, pos int) {
	c, w := m.Config, &m.Layers[l]
	RMSNorm(s.H, s.X, w.AttnNorm, c.NormEps)

	// §7.1: q = h W_qᵀ, k = h W_kᵀ, v = h W_vᵀ; RoPE on q and k (§7.2).
	MatVec(s.Q, s.H, &w.Wq)
	MatVec(s.K, s.H, &w.Wk)
	MatVec(s.V, s.H, &w.Wv)
	ApplyRoPE(m, s.Q, pos)
	ApplyRoPE(m, s.K, pos)

	// §10: the cache's row pos holds this position's key (after RoPE) and value.
	kvDim := c.KVDim()
	copy(s.KeyCache[l][pos*kvDim:(pos+1)*kvDim], s.K)
	copy(s.ValueCache[l][pos*kvDim:(pos+1)*kvDim], s.V)

	Attention(s, c, l, pos)
	MatVec(s.Out, s.Attn, &w.Wo) // attn_out = o W_oᵀ
	add(s.X, s.Out)

	RMSNorm(s.H, s.X, w.FFNNorm, c.NormEps)
	SwiGLU(s, w)
	add(s.X, s.Out)
}

// Attention is causal grouped-query attention (§7.3) of the query at position
// pos over the cached positions 0..pos of layer l, into s.Attn. For each query
// head h, reading KV head g = h / n_rep:
//
//	attn[h] = Σ_j softmax_j(q[h]·k[j,g] / √hd) v[j,g]
//
// Positions after pos are not in the cache yet: that is the causal mask.
func Attention(s *RunState, c model.Config, l, pos int) {
	hd, kvDim := c.HeadDim(), c.KVDim()
	scale := float32(1 / math.Sqrt(float64(hd)))
	for h := 0; h < c.NHeads; h++ {
		g := h / c.NRep() // consecutive query heads share a KV head
		q := s.Q[h*hd : (h+1)*hd]
		scores := s.Scores[:pos+1]
		for j := range scores {
			k := s.KeyCache[l][j*kvDim+g*hd : j*kvDim+(g+1)*hd]
			scores[j] = dot(q, k) * scale
		}
		Softmax(scores)
		out := s.Attn[h*hd : (h+1)*hd]
		clear(out)
		for j, p := range scores {
			v := s.ValueCache[l][j*kvDim+g*hd : j*kvDim+(g+1)*hd]
			for i := range out {
				out[i] += p * v[i]
			}
		}
	}
}

// SwiGLU is the feed-forward network of §8 on s.H, into s.Out:
// (silu(h W_gateᵀ) ⊙ (h W_upᵀ)) W_downᵀ. The gated hidden stays in s.Gate.
func SwiGLU(s *RunState, w *model.Layer) {
	MatVec(s.Gate, s.H, &w.WGate)
	MatVec(s.Up, s.H, &w.WUp)
	for i, z := range s.Gate {
		s.Gate[i] = silu(z) * s.Up[i]
	}
	MatVec(s.Out, s.Gate, &w.WDown)
}

// silu(z) = z·σ(z) = z / (1 + e^-z).
func silu(z float32) float32 {
	return z / (1 + float32(math.Exp(float64(-z))))
}

// RMSNorm writes x / sqrt(mean(x²) + eps) ⊙ weight into out (§6); the sum of
// squares is taken in float64, as §6 asks for float32 or wider.
func RMSNorm(out, x, weight []float32, eps float64) {
	var sumSquares float64
	for _, v := range x {
		sumSquares += float64(v) * float64(v)
	}
	scale := float32(1 / math.Sqrt(sumSquares/float64(len(x))+eps))
	for i, v := range x {
		out[i] = v * scale * weight[i]
	}
}

// ApplyRoPE rotates each adjacent pair (x[2i], x[2i+1]) of every head of x
// (heads of head_dim values) by the angle pos·θ_i, θ_i = theta^(-2i/head_dim)
// (§7.2; m.RopeFrequency, which also applies a published file's frequency
// factors and linear scaling). The angle is computed in float64: in float32,
// m·θ_i loses precision at large positions.
func ApplyRoPE(m *model.Model, x []float32, pos int) {
	headDim := m.Config.HeadDim()
	for head := 0; head < len(x); head += headDim {
		for i := 0; i < headDim/2; i++ {
			angle := float64(pos) * m.RopeFrequency(i)
			cos, sin := float32(math.Cos(angle)), float32(math.Sin(angle))
			x0, x1 := x[head+2*i], x[head+2*i+1]
			x[head+2*i] = x0*cos - x1*sin
			x[head+2*i+1] = x0*sin + x1*cos
		}
	}
}

// Softmax replaces x by exp(x - max x) / Σ exp(x - max x); subtracting the
// maximum changes nothing but keeps exp from overflowing.
func Softmax(x []float32) {
	top := x[0]
	for _, v := range x {
		top = max(top, v)
	}
	var sum float32
	for i, v := range x {
		x[i] = float32(math.Exp(float64(v - top)))
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}

// MatVec computes out = x Wᵀ (spec/model.md §1, for one row x), with W of
// shape (len(out), len(x)) in any stored type (F32, F16, Q8_0, Q4_K, ...): each row is
// widened to float32 (dequantised, spec/format.md §5) on the fly and dotted
// with x. Every linear layer of this package is one call.
func MatVec(out, x []float32, w *tensor.Matrix) {
	row := make([]float32, w.Cols)
	for r := range out {
		w.Row(row, r)
		out[r] = dot(row, x)
	}
}

func dot(a, b []float32) float32 {
	var sum float32
	for i := range a {
		sum += a[i] * b[i]
	}
	return sum
}

// add adds b into a: the residual connection.
func add(a, b []float32) {
	for i := range a {
		a[i] += b[i]
	}
}

// Classify runs tokens at positions 0.. and returns the class logits of the
// last one, cls.output.weight · h (spec/format.md §6.3), for a classifier
// model (m.Classifier set).
func Classify(m *model.Model, s *RunState, tokens []int) []float32 {
	var h []float32
	for pos, token := range tokens {
		h = Hidden(m, s, token, pos)
	}
	logits := make([]float32, len(m.Labels))
	MatVec(logits, h, m.Classifier)
	return logits
}
