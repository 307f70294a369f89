package model

import (
	"fmt"
	"math"
	"slices"

	"gollm/goengine/tensor"
)

// KVCache holds, per layer, the keys (after RoPE) and values of positions
// 0..Len-1: each (context_length, n_kv_heads, head_dim), allocated once.
type KVCache struct {
	K, V [][]float32
	Len  int
}

// Session is one sequence being processed: its KV cache and scratch buffers,
// allocated once (as llama2.c's RunState), so a step allocates nothing.
type Session struct {
	m     *Model
	cache KVCache

	x, h     []float32 // (dim) residual stream, normed input of a sublayer
	q, k, v  []float32 // (n_heads*head_dim), (kv_dim), (kv_dim)
	scores   []float32 // (context_length) one head's attention weights
	attn     []float32 // (n_heads*head_dim) attention output before Wo
	proj     []float32 // (dim) output of Wo or W_down
	gate, up []float32 // (ffn_dim)
	logits   []float32 // (vocab_size)

	// Trace, if set, receives every intermediate activation by its golden name
	// (spec/goldens.md §2.2) for one position. Tests use it; nil costs nothing.
	Trace func(name string, pos int, value []float32)
}

// NewSession allocates the cache and buffers of one sequence.
func (m *Model) NewSession() *Session {
	c := m.Config
	s := &Session{m: m}
	for l := 0; l < c.NLayers; l++ {
		s.cache.K = append(s.cache.K, make([]float32, c.ContextLength*c.KVDim()))
		s.cache.V = append(s.cache.V, make([]float32, c.ContextLength*c.KVDim()))
	}
	q := c.NHeads * c.HeadDim()
	s.x, s.h, s.proj = make([]float32, c.Dim), make([]float32, c.Dim), make([]float32, c.Dim)
	s.q, s.attn = make([]float32, q), make([]float32, q)
	s.k, s.v = make([]float32, c.KVDim()), make([]float32, c.KVDim())
	s.scores = make([]float32, c.ContextLength)
	s.gate, s.up = make([]float32, c.FFNDim), make([]float32, c.FFNDim)
	s.logits = make([]float32, c.VocabSize)
	return s
}

// Pos is the position the next token will take: the number of tokens so far.
func (s *Session) Pos() int { return s.cache.Len }

// Reset empties the cache so the session can start a new sequence.
func (s *Session) Reset() { s.cache.Len = 0 }

func (s *Session) trace(name string, pos int, value []float32) {
	if s.Trace != nil {
		s.Trace(name, pos, value)
	}
}

// Prefill runs the prompt through the model and returns the logits of its last
// token, which predict the next one. The slice is reused by the next call.
func (s *Session) Prefill(tokens []int) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("prefill: empty prompt")
	}
	if s.Pos()+len(tokens) > s.m.Config.ContextLength {
		return nil, fmt.Errorf("prompt of %d tokens does not fit in the context: %d of %d positions are free",
			len(tokens), s.m.Config.ContextLength-s.Pos(), s.m.Config.ContextLength)
	}
	var logits []float32
	for _, token := range tokens {
		var err error
		if logits, err = s.DecodeStep(token); err != nil {
			return nil, err
		}
	}
	return logits, nil
}

// DecodeStep runs one token at position Pos() through every block, appending its
// keys and values to the cache, and returns the logits (vocab_size) for the next
// token (spec/model.md §10). The slice is reused by the next call.
func (s *Session) DecodeStep(token int) ([]float32, error) {
	c := s.m.Config
	pos := s.cache.Len
	if token < 0 || token >= c.VocabSize {
		return nil, fmt.Errorf("token id %d is outside the vocabulary (0..%d)", token, c.VocabSize-1)
	}
	if pos >= c.ContextLength {
		return nil, fmt.Errorf("position %d is past the context length %d", pos, c.ContextLength)
	}
	copy(s.x, s.m.TokenEmbd[token*c.Dim:(token+1)*c.Dim])
	s.trace("embeddings", pos, s.x)
	for l := range s.m.Layers {
		s.Block(l, pos)
	}
	s.cache.Len++
	tensor.RMSNorm(s.h, s.x, s.m.OutputNorm, c.NormEps)
	s.trace("output_norm", pos, s.h)
	tensor.MatVec(s.logits, s.m.Output, s.h)
	s.trace("logits", pos, s.logits)
	return s.logits, nil
}

// Block is one transformer block on the residual stream s.x at position pos:
// x += attention(rms_norm(x)); x += swiglu(rms_norm(x)).
func (s *Session) Block(l, pos int) {
	c, w := s.m.Config, &s.m.Layers[l]
	name := func(n string) string { return fmt.Sprintf("blk.%d.%s", l, n) }
	traced := s.Trace != nil

	tensor.RMSNorm(s.h, s.x, w.AttnNorm, c.NormEps)
	tensor.MatVec(s.q, w.Wq, s.h)
	tensor.MatVec(s.k, w.Wk, s.h)
	tensor.MatVec(s.v, w.Wv, s.h)
	s.ApplyRoPE(s.q, pos)
	s.ApplyRoPE(s.k, pos)
	kvDim := c.KVDim()
	copy(s.cache.K[l][pos*kvDim:], s.k)
	copy(s.cache.V[l][pos*kvDim:], s.v)
	s.Attention(l, pos)
	tensor.MatVec(s.proj, w.Wo, s.attn)
	if traced {
		s.trace(name("attn_norm"), pos, s.h)
		s.trace(name("q_rope"), pos, s.q)
		s.trace(name("k_rope"), pos, s.k)
		s.trace(name("v"), pos, s.v)
		s.trace(name("attn"), pos, s.attn)
		s.trace(name("attn_out"), pos, s.proj)
	}
	tensor.Add(s.x, s.proj)
	if traced {
		s.trace(name("attn_resid"), pos, s.x)
	}

	tensor.RMSNorm(s.h, s.x, w.FFNNorm, c.NormEps)
	s.SwiGLU(w)
	if traced {
		s.trace(name("ffn_norm"), pos, s.h)
		s.trace(name("ffn_hidden"), pos, s.gate)
		s.trace(name("ffn_out"), pos, s.proj)
	}
	tensor.Add(s.x, s.proj)
	if traced {
		s.trace(name("out"), pos, s.x)
	}
}

// ApplyRoPE rotates each adjacent pair (x[2i], x[2i+1]) of every head in x by
// the angle pos * theta_i (spec/model.md §7.2).
func (s *Session) ApplyRoPE(x []float32, pos int) {
	hd := s.m.Config.HeadDim()
	half := hd / 2
	cos, sin := s.m.ropeCos[pos*half:(pos+1)*half], s.m.ropeSin[pos*half:(pos+1)*half]
	for head := 0; head < len(x); head += hd {
		for i := 0; i < half; i++ {
			x0, x1 := x[head+2*i], x[head+2*i+1]
			x[head+2*i] = x0*cos[i] - x1*sin[i]
			x[head+2*i+1] = x0*sin[i] + x1*cos[i]
		}
	}
}

// Attention is causal grouped-query attention of s.q (position pos) over the
// cached keys and values of positions 0..pos of layer l; query head h reads KV
// head h / n_rep. The result goes to s.attn.
func (s *Session) Attention(l, pos int) {
	c := s.m.Config
	hd, kvDim := c.HeadDim(), c.KVDim()
	scale := float32(1 / math.Sqrt(float64(hd)))
	keys, values := s.cache.K[l], s.cache.V[l]
	for h := 0; h < c.NHeads; h++ {
		q := s.q[h*hd : (h+1)*hd]
		kvOffset := (h / c.NRep()) * hd
		scores := s.scores[:pos+1] // only positions <= pos exist: that is the causal mask
		for j := range scores {
			scores[j] = tensor.Dot(q, keys[j*kvDim+kvOffset:]) * scale
		}
		tensor.Softmax(scores)
		out := s.attn[h*hd : (h+1)*hd]
		clear(out)
		for j, p := range scores {
			v := values[j*kvDim+kvOffset : j*kvDim+kvOffset+hd]
			for i := range out {
				out[i] += p * v[i]
			}
		}
	}
}

// SwiGLU computes (silu(h W_gate^T) * (h W_up^T)) W_down^T of s.h into s.proj;
// the gated hidden stays in s.gate.
func (s *Session) SwiGLU(w *Layer) {
	tensor.MatVec(s.gate, w.WGate, s.h)
	tensor.MatVec(s.up, w.WUp, s.h)
	for i, g := range s.gate {
		s.gate[i] = tensor.SiLU(g) * s.up[i]
	}
	tensor.MatVec(s.proj, w.WDown, s.gate)
}

// Forward runs tokens at positions 0..T-1 in a fresh session and returns every
// position's logits (T, vocab_size). For tests and tools; generation uses a
// Session directly.
func (m *Model) Forward(tokens []int) ([][]float32, error) {
	s := m.NewSession()
	if len(tokens) > m.Config.ContextLength {
		return nil, fmt.Errorf("%d tokens exceed the context length %d", len(tokens), m.Config.ContextLength)
	}
	all := make([][]float32, 0, len(tokens))
	for _, token := range tokens {
		logits, err := s.DecodeStep(token)
		if err != nil {
			return nil, err
		}
		all = append(all, slices.Clone(logits))
	}
	return all, nil
}
