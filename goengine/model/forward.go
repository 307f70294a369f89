package model

import (
	"fmt"
	"math"
	"slices"

	"gollm/goengine/tensor"
)

// KVCache holds, per layer, the keys (after RoPE) and values of positions
// 0..Len-1, allocated once. V is (context_length, n_kv_heads, head_dim) as in
// spec/model.md §10; K is kept transposed, (n_kv_heads, head_dim, positions)
// with row stride KStride, so that both of attention's products read the cache
// in place along rows (see Session.Attention).
type KVCache struct {
	K, V    [][]float32
	KStride int // context_length + 16: a multiple of 4 KiB would map every row to the same L1 sets
	Len     int
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
	s.cache.KStride = c.ContextLength + 16
	for l := 0; l < c.NLayers; l++ {
		s.cache.K = append(s.cache.K, make([]float32, c.KVDim()*s.cache.KStride))
		s.cache.V = append(s.cache.V, make([]float32, c.ContextLength*c.KVDim()))
	}
	s.logits = make([]float32, c.VocabSize)
	s.attention.s = s
	s.attention.scores = make([][]float32, m.pool.Threads())
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
	// q = h Wqᵀ, k = h Wkᵀ, v = h Wvᵀ, in one call: one pass over the weights.
	pool.MatMuls(s.h, s.T, tensor.Product{Out: s.q, W: &w.Wq}, tensor.Product{Out: s.k, W: &w.Wk}, tensor.Product{Out: s.v, W: &w.Wv})
	s.applyRoPERows(s.q)
	s.applyRoPERows(s.k)
	kvDim, pos := c.KVDim(), s.Pos()
	// Keys go in transposed: column j of k becomes row j of K.
	for i := 0; i < s.T; i++ {
		for j, key := range s.k[i*kvDim : (i+1)*kvDim] {
			s.cache.K[l][j*s.cache.KStride+pos+i] = key
		}
	}
	copy(s.cache.V[l][pos*kvDim:], s.v)
	s.attention.layer = l
	pool.Run(&s.attention, c.NKVHeads)
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

// attentionTask is causal grouped-query attention for the batch, one part per
// KV head.
type attentionTask struct {
	s      *Session
	layer  int
	scores [][]float32 // per worker: (rows, n) attention weights
}

// Part i is KV head i's group.
func (a *attentionTask) Part(i, n, w int) {
	a.s.Attention(a.layer, i, &a.scores[w])
}

// Attention is causal grouped-query attention (spec/model.md §7.3) for the query
// heads that read KV head g of layer l, whose outputs go to their columns of
// s.attn. Row i of the batch, at position p+i (p = Pos()), attends over cache
// positions 0..p+i. For each query head, with Q its (T, hd) rows:
//
//	attn = softmax(Q Kᵀ / sqrt(hd) + causal mask) V
//
// as two matrix products over the n = p+T cached positions, read in place: Kᵀ
// is (hd, n), rows of the transposed key cache, and V is (n, hd) with row stride
// kv_dim. A one-token batch stacks the group's n_rep heads as the rows of Q
// instead, so the group's keys and values are read once for all of them.
func (s *Session) Attention(l, g int, scores *[]float32) {
	c := s.m.Config
	hd, qDim, nRep := c.HeadDim(), c.NHeads*c.HeadDim(), c.NRep()
	if s.T == 1 {
		s.attend(l, g, s.q[g*nRep*hd:], hd, nRep, s.attn[g*nRep*hd:], hd, scores)
		return
	}
	for h := g * nRep; h < (g+1)*nRep; h++ {
		s.attend(l, g, s.q[h*hd:], qDim, s.T, s.attn[h*hd:], qDim, scores)
	}
}

// attend computes rows of attention over KV head g: queries q (row stride ldq)
// in, outputs out (row stride ldo) out. Row i is batch row i, or with a
// one-token batch all rows are that token.
func (s *Session) attend(l, g int, q []float32, ldq, rows int, out []float32, ldo int, scores *[]float32) {
	c := s.m.Config
	hd, ctx := c.HeadDim(), c.ContextLength
	n := s.Pos() + s.T
	*scores = grow(*scores, rows*ctx) // room for the whole context: no growth while decoding
	p := (*scores)[:rows*n]
	keysT, values := s.cache.K[l][g*hd*s.cache.KStride:], s.cache.V[l][g*hd:]
	tensor.MatMulNN(p, n, q, ldq, keysT, s.cache.KStride, rows, hd, n) // (rows, n) = Q Kᵀ
	scale := float32(1 / math.Sqrt(float64(hd)))
	for i := 0; i < rows; i++ {
		visible := s.Pos() + 1 // the causal mask: positions <= this row's
		if s.T > 1 {
			visible += i
		}
		row := p[i*n : (i+1)*n]
		for j := range row[:visible] {
			row[j] *= scale
		}
		tensor.Softmax(row[:visible])
		clear(row[visible:])
	}
	tensor.MatMulNN(out, ldo, p, n, values, c.KVDim(), rows, n, hd) // (rows, hd) = P V
}

// SwiGLU computes (silu(h W_gate^T) * (h W_up^T)) W_down^T of s.h into s.proj;
// the gated hidden stays in s.gate.
func (s *Session) SwiGLU(w *Layer) {
	pool := s.m.pool
	pool.MatMuls(s.h, s.T, tensor.Product{Out: s.gate, W: &w.WGate}, tensor.Product{Out: s.up, W: &w.WUp})
	tensor.SwiGLUGate(s.gate, s.up) // gate = silu(gate) * up
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
