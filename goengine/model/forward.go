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

// Session is one sequence being processed: its KV cache and scratch buffers.
// A session runs T tokens at a time through the model (spec/model.md §10): the
// whole prompt at once, or one token per decode step. Each activation is a
// (T, width) row-major matrix, so every linear layer is one matrix product that
// reads each weight once for all T tokens. The buffers are allocated on first
// use and reused (as llama2.c's RunState), so a decode step allocates nothing.
type Session struct {
	m     *Model
	cache KVCache

	T        int       // tokens in the current batch
	x, h     []float32 // (T, dim) residual stream, normed input of a sublayer
	q, k, v  []float32 // (T, n_heads*head_dim), (T, kv_dim), (T, kv_dim)
	attn     []float32 // (T, n_heads*head_dim) attention output before Wo
	proj     []float32 // (T, dim) output of Wo or W_down
	gate, up []float32 // (T, ffn_dim)
	scores   []float32 // (threads, context_length) attention weights, one row per part
	logits   []float32 // (vocab_size) of the batch's last token
	one      [1]int    // the batch of a decode step

	attention attentionTask

	// Trace, if set, receives every intermediate activation by its golden name
	// (spec/goldens.md §2.2) for each position. Tests use it; nil costs nothing.
	Trace func(name string, pos int, value []float32)
}

// NewSession allocates the cache of one sequence.
func (m *Model) NewSession() *Session {
	c := m.Config
	s := &Session{m: m}
	for l := 0; l < c.NLayers; l++ {
		s.cache.K = append(s.cache.K, make([]float32, c.ContextLength*c.KVDim()))
		s.cache.V = append(s.cache.V, make([]float32, c.ContextLength*c.KVDim()))
	}
	s.scores = make([]float32, m.pool.Threads()*c.ContextLength)
	s.logits = make([]float32, c.VocabSize)
	s.attention.s = s
	s.attention.scratch = make([]attentionScratch, m.pool.Threads())
	return s
}

// Pos is the position the next token will take: the number of tokens so far.
func (s *Session) Pos() int { return s.cache.Len }

// Reset empties the cache so the session can start a new sequence.
func (s *Session) Reset() { s.cache.Len = 0 }

// maxBatch bounds the tokens run at once, and so the scratch buffers: 256
// tokens of the seed model take 7 MiB, and a longer prompt runs in chunks.
var maxBatch = 256 // a variable so tests can cut a prompt into small batches

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
	if err := s.checkTokens(tokens); err != nil {
		return nil, err
	}
	for start := 0; start < len(tokens); start += maxBatch {
		s.forward(tokens[start:min(start+maxBatch, len(tokens))])
	}
	return s.logits, nil
}

// DecodeStep runs one token at position Pos() through every block, appending its
// keys and values to the cache, and returns the logits (vocab_size) for the next
// token. The slice is reused by the next call.
func (s *Session) DecodeStep(token int) ([]float32, error) {
	if pos := s.Pos(); pos >= s.m.Config.ContextLength {
		return nil, fmt.Errorf("position %d is past the context length %d", pos, s.m.Config.ContextLength)
	}
	s.one[0] = token
	if err := s.checkTokens(s.one[:]); err != nil {
		return nil, err
	}
	s.forward(s.one[:])
	return s.logits, nil
}

func (s *Session) checkTokens(tokens []int) error {
	for _, token := range tokens {
		if token < 0 || token >= s.m.Config.VocabSize {
			return fmt.Errorf("token id %d is outside the vocabulary (0..%d)", token, s.m.Config.VocabSize-1)
		}
	}
	return nil
}

// forward runs tokens at positions Pos().. through the model (spec/model.md
// §10) and leaves the last token's logits in s.logits.
func (s *Session) forward(tokens []int) {
	c, m := s.m.Config, s.m
	s.resize(len(tokens))
	pos := s.Pos()
	for i, token := range tokens {
		m.TokenEmbd.Row(s.x[i*c.Dim:(i+1)*c.Dim], token)
	}
	s.traceRows("embeddings", s.x)
	for l := range m.Layers {
		s.Block(l)
	}
	s.cache.Len += s.T
	if s.Trace != nil { // the goldens hold every position's logits
		for i := 0; i < s.T; i++ {
			s.logitsOf(i)
			s.trace("output_norm", pos+i, s.h[:c.Dim])
			s.trace("logits", pos+i, s.logits)
		}
		return
	}
	s.logitsOf(s.T - 1)
}

// logitsOf computes the logits of batch row i: output(rms_norm(x_i)). Only the
// last token's are needed to go on, which saves the largest matrix for a prompt.
func (s *Session) logitsOf(i int) {
	c := s.m.Config
	h := s.h[:c.Dim]
	tensor.RMSNorm(h, s.x[i*c.Dim:(i+1)*c.Dim], s.m.OutputNorm, c.NormEps)
	s.m.pool.MatVec(s.logits, &s.m.Output, h)
}

// resize sets the batch to T tokens, growing the buffers when needed.
func (s *Session) resize(T int) {
	c := s.m.Config
	q := c.NHeads * c.HeadDim()
	s.T = T
	s.x, s.h, s.proj = grow(s.x, T*c.Dim), grow(s.h, T*c.Dim), grow(s.proj, T*c.Dim)
	s.q, s.attn = grow(s.q, T*q), grow(s.attn, T*q)
	s.k, s.v = grow(s.k, T*c.KVDim()), grow(s.v, T*c.KVDim())
	s.gate, s.up = grow(s.gate, T*c.FFNDim), grow(s.up, T*c.FFNDim)
}

func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// Block is one transformer block on the residual stream s.x of the batch:
// x += attention(rms_norm(x)); x += swiglu(rms_norm(x)).
func (s *Session) Block(l int) {
	c, w, pool := s.m.Config, &s.m.Layers[l], s.m.pool
	name := func(n string) string { return fmt.Sprintf("blk.%d.%s", l, n) }
	traced := s.Trace != nil

	s.rmsNormRows(s.h, s.x, w.AttnNorm)
	pool.MatMul(s.q, &w.Wq, s.h, s.T)
	pool.MatMul(s.k, &w.Wk, s.h, s.T)
	pool.MatMul(s.v, &w.Wv, s.h, s.T)
	s.applyRoPERows(s.q)
	s.applyRoPERows(s.k)
	kvDim, pos := c.KVDim(), s.Pos()
	copy(s.cache.K[l][pos*kvDim:], s.k)
	copy(s.cache.V[l][pos*kvDim:], s.v)
	s.attention.layer = l
	pool.Run(&s.attention)
	pool.MatMul(s.proj, &w.Wo, s.attn, s.T)
	if traced {
		s.traceRows(name("attn_norm"), s.h)
		s.traceRows(name("q_rope"), s.q)
		s.traceRows(name("k_rope"), s.k)
		s.traceRows(name("v"), s.v)
		s.traceRows(name("attn"), s.attn)
		s.traceRows(name("attn_out"), s.proj)
	}
	tensor.Add(s.x, s.proj)
	if traced {
		s.traceRows(name("attn_resid"), s.x)
	}

	s.rmsNormRows(s.h, s.x, w.FFNNorm)
	s.SwiGLU(w)
	if traced {
		s.traceRows(name("ffn_norm"), s.h)
		s.traceRows(name("ffn_hidden"), s.gate)
		s.traceRows(name("ffn_out"), s.proj)
	}
	tensor.Add(s.x, s.proj)
	if traced {
		s.traceRows(name("out"), s.x)
	}
}

// rmsNormRows normalizes each token's row of x into out.
func (s *Session) rmsNormRows(out, x, weight []float32) {
	d := s.m.Config.Dim
	for i := 0; i < s.T; i++ {
		tensor.RMSNorm(out[i*d:(i+1)*d], x[i*d:(i+1)*d], weight, s.m.Config.NormEps)
	}
}

// applyRoPERows rotates each token's row of x by its own position.
func (s *Session) applyRoPERows(x []float32) {
	width := len(x) / s.T
	for i := 0; i < s.T; i++ {
		s.ApplyRoPE(x[i*width:(i+1)*width], s.Pos()+i)
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

// attentionTask is causal grouped-query attention for the batch, split over the
// pool's threads: by query head for one token, by KV head for a prompt.
type attentionTask struct {
	s       *Session
	layer   int
	scratch []attentionScratch // one per part
}

func (a *attentionTask) Part(part, parts int) {
	s, c := a.s, a.s.m.Config
	if s.T == 1 {
		scores := s.scores[part*c.ContextLength : (part+1)*c.ContextLength]
		for h := c.NHeads * part / parts; h < c.NHeads*(part+1)/parts; h++ {
			s.Attention(a.layer, h, scores)
		}
		return
	}
	for g := c.NKVHeads * part / parts; g < c.NKVHeads*(part+1)/parts; g++ {
		s.batchAttention(a.layer, g, &a.scratch[part])
	}
}

// Attention is causal attention of query head h of the one token in the batch,
// at position p = Pos(), over the cached keys and values of positions 0..p of
// layer l; query head h reads KV head h / n_rep (spec/model.md §7.3). The result
// goes to head h of s.attn; scores is scratch of context_length.
func (s *Session) Attention(l, h int, scores []float32) {
	c := s.m.Config
	hd, kvDim := c.HeadDim(), c.KVDim()
	scale := float32(1 / math.Sqrt(float64(hd)))
	keys, values := s.cache.K[l], s.cache.V[l]
	q := s.q[h*hd : (h+1)*hd]
	kvOffset := (h / c.NRep()) * hd
	scores = scores[:s.Pos()+1] // only positions <= p exist: that is the causal mask
	for j := range scores {
		scores[j] = tensor.Dot(q, keys[j*kvDim+kvOffset:j*kvDim+kvOffset+hd]) * scale
	}
	tensor.Softmax(scores)
	out := s.attn[h*hd : (h+1)*hd]
	clear(out)
	for j, p := range scores {
		tensor.Axpy(out, p, values[j*kvDim+kvOffset:j*kvDim+kvOffset+hd])
	}
}

// attentionScratch holds one KV head's operands as contiguous matrices.
type attentionScratch struct {
	k, vT, q, scores []float32
}

// batchAttention is the same attention for a batch of T tokens at positions
// p..p+T-1, for the query heads of KV head g, as matrix products:
// softmax(Q Kᵀ/sqrt(hd) + causal mask) V over the n = p+T cached positions.
// The head's keys (n, hd), values transposed (hd, n) and queries (T, hd) are
// copied out of the interleaved cache first, so that each product is one call.
func (s *Session) batchAttention(l, g int, m *attentionScratch) {
	c := s.m.Config
	hd, kvDim, qDim := c.HeadDim(), c.KVDim(), c.NHeads*c.HeadDim()
	scale := float32(1 / math.Sqrt(float64(hd)))
	n, T := s.Pos()+s.T, s.T
	m.k, m.vT, m.q, m.scores = grow(m.k, n*hd), grow(m.vT, hd*n), grow(m.q, T*hd), grow(m.scores, T*n)
	keys, values := s.cache.K[l], s.cache.V[l]
	for j := 0; j < n; j++ {
		copy(m.k[j*hd:(j+1)*hd], keys[j*kvDim+g*hd:])
		for i, v := range values[j*kvDim+g*hd : j*kvDim+(g+1)*hd] {
			m.vT[i*n+j] = v
		}
	}
	for h := g * c.NRep(); h < (g+1)*c.NRep(); h++ {
		for i := 0; i < T; i++ {
			copy(m.q[i*hd:(i+1)*hd], s.q[i*qDim+h*hd:])
		}
		tensor.MatMulF32(m.scores, n, m.k, n, m.q, T, hd) // scores = Q Kᵀ, (T, n)
		for i := 0; i < T; i++ {
			row := m.scores[i*n : (i+1)*n]
			visible := s.Pos() + i + 1 // the causal mask: positions <= p+i
			for j := range row[:visible] {
				row[j] *= scale
			}
			tensor.Softmax(row[:visible])
			clear(row[visible:])
		}
		// out = P V = P (Vᵀ)ᵀ, written into head h's columns of s.attn.
		tensor.MatMulF32(s.attn[h*hd:], qDim, m.vT, hd, m.scores, T, n)
	}
}

// SwiGLU computes (silu(h W_gate^T) * (h W_up^T)) W_down^T of s.h into s.proj;
// the gated hidden stays in s.gate.
func (s *Session) SwiGLU(w *Layer) {
	pool := s.m.pool
	pool.MatMul(s.gate, &w.WGate, s.h, s.T)
	pool.MatMul(s.up, &w.WUp, s.h, s.T)
	for i, g := range s.gate {
		s.gate[i] = tensor.SiLU(g) * s.up[i]
	}
	pool.MatMul(s.proj, &w.WDown, s.gate, s.T)
}

func (s *Session) trace(name string, pos int, value []float32) {
	if s.Trace != nil {
		s.Trace(name, pos, value)
	}
}

// traceRows traces each token's row of a (T, width) activation.
func (s *Session) traceRows(name string, value []float32) {
	if s.Trace == nil {
		return
	}
	width := len(value) / s.T
	for i := 0; i < s.T; i++ {
		s.Trace(name, s.Pos()+i, value[i*width:(i+1)*width])
	}
}

// Forward runs tokens at positions 0..T-1 one decode step at a time in a fresh
// session and returns every position's logits (T, vocab_size). For tests and
// tools; generation uses a Session directly.
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
