package engine

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"gollm/goengine/model"
	"gollm/goengine/tensor"
)

// KVCache holds, per layer, the keys (after RoPE) and values of positions
// 0..Len-1, allocated once. V is (context_length, n_kv_heads, head_dim) as in
// spec/model.md §10; K is kept transposed, (n_kv_heads, head_dim, positions)
// with row stride KStride, so that both of attention's products read the cache
// in place along rows (see Batch.attend).
type KVCache struct {
	K, V    [][]float32
	KStride int // context_length + 16: a multiple of 4 KiB would map every row to the same L1 sets
	Len     int
}

// Session is one sequence being processed: its KV cache, the logits of its last
// token, and a Batch for its own tokens (spec/model.md §10): the whole prompt at
// once, or one token per decode step.
type Session struct {
	m      *model.Model
	cache  KVCache
	logits []float32 // (vocab_size) of the last token run
	hidden []float32 // (dim) final-norm hidden state, of Hidden
	one    [1]int    // the tokens of a decode step
	own    *Batch

	// Trace, if set, receives every intermediate activation by its golden name
	// (spec/goldens.md §2.2) for each position. Tests use it; nil costs nothing.
	Trace func(name string, pos int, value []float32)
}

// NewSession allocates the cache of one sequence of m.
func NewSession(m *model.Model) *Session {
	c := m.Config
	s := &Session{m: m, logits: make([]float32, c.VocabSize), hidden: make([]float32, c.Dim), own: NewBatch(m)}
	s.cache.KStride = c.ContextLength + 16
	for l := 0; l < c.NLayers; l++ {
		s.cache.K = append(s.cache.K, make([]float32, c.KVDim()*s.cache.KStride))
		s.cache.V = append(s.cache.V, make([]float32, c.ContextLength*c.KVDim()))
	}
	return s
}

// Pos is the position the next token will take: the number of tokens so far.
func (s *Session) Pos() int { return s.cache.Len }

// Room is the number of positions left in the context.
func (s *Session) Room() int { return s.m.Config.ContextLength - s.cache.Len }

// Reset empties the cache so the session can start a new sequence.
func (s *Session) Reset() { s.cache.Len = 0 }

// Truncate keeps the first n positions of the cache and forgets the rest, so
// that the next token takes position n. A position's keys and values depend
// only on the tokens up to it, so the kept ones stay exact: a chat whose history
// is rendered anew each turn runs only what follows the prefix it shares with
// the cache. n must be in 0..Pos().
func (s *Session) Truncate(n int) {
	if n < 0 || n > s.cache.Len {
		panic(fmt.Sprintf("engine: Truncate(%d) outside 0..%d", n, s.cache.Len))
	}
	s.cache.Len = n
}

// maxBatch bounds the tokens run at once, and so the scratch buffers: 256
// tokens of the seed model take 7 MiB, and a longer prompt runs in chunks.
var maxBatch = 256 // a variable so tests can cut a prompt into small batches

// Prefill runs the prompt through the model and returns the logits of its last
// token, which predict the next one. The slice is reused by the next call.
func (s *Session) Prefill(tokens []int) ([]float32, error) {
	if err := s.checkPrompt(tokens); err != nil {
		return nil, err
	}
	for start := 0; start < len(tokens); start += maxBatch {
		s.own.sequence(s, tokens[start:min(start+maxBatch, len(tokens))])
	}
	return s.logits, nil
}

// Hidden runs the tokens as Prefill does but returns, instead of the logits of
// the last, its final-norm hidden state (dim): rms_norm(x) with output_norm,
// what the lm head and a classifier's head read. It skips the lm head. The
// slice is reused by the next call.
func (s *Session) Hidden(tokens []int) ([]float32, error) {
	if err := s.checkPrompt(tokens); err != nil {
		return nil, err
	}
	for start := 0; start < len(tokens); start += maxBatch {
		s.own.advance(s, tokens[start:min(start+maxBatch, len(tokens))])
	}
	b, d := s.own, s.m.Config.Dim
	tensor.RMSNorm(s.hidden, b.x[(b.T-1)*d:b.T*d], s.m.OutputNorm, s.m.Config.NormEps)
	return s.hidden, nil
}

func (s *Session) checkPrompt(tokens []int) error {
	if len(tokens) == 0 {
		return fmt.Errorf("prefill: empty prompt")
	}
	if s.Pos()+len(tokens) > s.m.Config.ContextLength {
		return fmt.Errorf("prompt of %d tokens does not fit in the context: %d of %d positions are free",
			len(tokens), s.m.Config.ContextLength-s.Pos(), s.m.Config.ContextLength)
	}
	return checkTokens(s.m, tokens)
}

// DecodeStep runs one token at position Pos() through every block, appending its
// keys and values to the cache, and returns the logits (vocab_size) for the next
// token. The slice is reused by the next call.
func (s *Session) DecodeStep(token int) ([]float32, error) {
	if err := s.checkRoom(); err != nil {
		return nil, err
	}
	s.one[0] = token
	if err := checkTokens(s.m, s.one[:]); err != nil {
		return nil, err
	}
	s.own.sequence(s, s.one[:])
	return s.logits, nil
}

func (s *Session) checkRoom() error {
	if pos := s.Pos(); pos >= s.m.Config.ContextLength {
		return fmt.Errorf("position %d is past the context length %d", pos, s.m.Config.ContextLength)
	}
	return nil
}

func checkTokens(m *model.Model, tokens []int) error {
	for _, token := range tokens {
		if token < 0 || token >= m.Config.VocabSize {
			return fmt.Errorf("token id %d is outside the vocabulary (0..%d)", token, m.Config.VocabSize-1)
		}
	}
	return nil
}

// Batch is T rows run through the model together: T consecutive tokens of one
// session (a prompt, or a decode step with T = 1), or one token of each of T
// sessions (a decode step for several sequences at once). Each activation is a
// (T, width) row-major matrix, so every linear layer is one matrix product that
// reads each weight once for all T rows; each row attends over its own session's
// cache. The buffers are allocated on first use and reused (as llama2.c's
// RunState), so a decode step allocates nothing.
type Batch struct {
	m        *model.Model
	T        int
	sessions []*Session // row i's session
	pos      []int      // row i's position
	one      bool       // all rows are one session's consecutive tokens

	x, h     []float32 // (T, dim) residual stream, normed input of a sublayer
	q, k, v  []float32 // (T, n_heads*head_dim), (T, kv_dim), (T, kv_dim)
	attn     []float32 // (T, n_heads*head_dim) attention output before Wo
	proj     []float32 // (T, dim) output of Wo or W_down
	gate, up []float32 // (T, ffn_dim)
	logits   []float32 // (T, vocab_size), for a batch of sessions
	out      [][]float32

	attention attentionTask
}

// NewBatch makes an empty batch of m; its buffers grow to the largest T it runs.
func NewBatch(m *model.Model) *Batch {
	b := &Batch{m: m}
	b.attention = attentionTask{b: b, scores: make([][]float32, m.Pool().Threads())}
	return b
}

// DecodeStep runs tokens[i] through the model as the next token of sessions[i],
// all as one batch, and leaves each session's next-token logits where its
// DecodeStep would return them (returned here in order). The sessions must be
// distinct. A row computes exactly what the session's own DecodeStep would: the
// products take each row's weights once for all rows, with the same kernels.
func (b *Batch) DecodeStep(sessions []*Session, tokens []int) ([][]float32, error) {
	if len(sessions) != len(tokens) || len(sessions) == 0 {
		return nil, fmt.Errorf("decode batch: %d sessions and %d tokens", len(sessions), len(tokens))
	}
	for i, s := range sessions {
		if s.m != b.m {
			return nil, fmt.Errorf("decode batch: session %d belongs to another model", i)
		}
		if slices.Index(sessions[:i], s) >= 0 {
			return nil, fmt.Errorf("decode batch: session %d appears twice", i)
		}
		if err := s.checkRoom(); err != nil {
			return nil, err
		}
	}
	if err := checkTokens(b.m, tokens); err != nil {
		return nil, err
	}
	b.sessions, b.one = append(b.sessions[:0], sessions...), len(sessions) == 1
	b.pos = b.pos[:0]
	for _, s := range sessions {
		b.pos = append(b.pos, s.Pos())
	}
	b.forward(tokens)
	c := b.m.Config
	b.logits = grow(b.logits, b.T*c.VocabSize)
	b.outputRows(b.logits, b.T)
	b.out = b.out[:0]
	for i, s := range sessions {
		s.cache.Len++
		copy(s.logits, b.logits[i*c.VocabSize:(i+1)*c.VocabSize])
		b.out = append(b.out, s.logits)
	}
	return b.out, nil
}

// sequence runs tokens of session s at positions s.Pos().. and leaves the last
// token's logits in s.logits.
func (b *Batch) sequence(s *Session, tokens []int) {
	b.advance(s, tokens)
	c := b.m.Config
	if s.Trace != nil { // the goldens hold every position's logits
		for i := 0; i < b.T; i++ {
			b.logitsOf(i, s.logits)
			s.Trace("output_norm", b.pos[i], b.h[:c.Dim])
			s.Trace("logits", b.pos[i], s.logits)
		}
		return
	}
	b.logitsOf(b.T-1, s.logits) // only the last is needed to go on: the largest matrix, once
}

// advance runs tokens of session s at positions s.Pos().. through every block,
// appending their keys and values to its cache; the last token's residual
// stream is row T-1 of b.x.
func (b *Batch) advance(s *Session, tokens []int) {
	b.sessions, b.one = append(b.sessions[:0], s), true
	b.pos = b.pos[:0]
	for i := range tokens {
		b.pos = append(b.pos, s.Pos()+i)
	}
	b.forward(tokens)
	s.cache.Len += b.T
}

// session is row i's session.
func (b *Batch) session(i int) *Session {
	if b.one {
		return b.sessions[0]
	}
	return b.sessions[i]
}

// forward runs the rows' tokens through every block (spec/model.md §10),
// writing their keys and values into their sessions' caches.
func (b *Batch) forward(tokens []int) {
	c, m := b.m.Config, b.m
	b.resize(len(tokens))
	for i, token := range tokens {
		m.TokenEmbd.Row(b.x[i*c.Dim:(i+1)*c.Dim], token)
	}
	b.traceRows("embeddings", b.x)
	for l := range m.Layers {
		b.Block(l)
	}
}

// logitsOf computes the logits of row i, output(rms_norm(x_i)), into out.
func (b *Batch) logitsOf(i int, out []float32) {
	c := b.m.Config
	h := b.h[:c.Dim]
	tensor.RMSNorm(h, b.x[i*c.Dim:(i+1)*c.Dim], b.m.OutputNorm, c.NormEps)
	b.m.Pool().MatVec(out, h, &b.m.Output)
}

// outputRows computes the logits of the first T rows into out (T, vocab_size).
func (b *Batch) outputRows(out []float32, T int) {
	c := b.m.Config
	b.rmsNormRows(b.h, b.x, b.m.OutputNorm)
	b.m.Pool().MatMul(out[:T*c.VocabSize], b.h[:T*c.Dim], &b.m.Output, T)
}

// resize sets the batch to T rows, growing the buffers when needed.
func (b *Batch) resize(T int) {
	c := b.m.Config
	q := c.NHeads * c.HeadDim()
	b.T = T
	b.x, b.h, b.proj = grow(b.x, T*c.Dim), grow(b.h, T*c.Dim), grow(b.proj, T*c.Dim)
	b.q, b.attn = grow(b.q, T*q), grow(b.attn, T*q)
	b.k, b.v = grow(b.k, T*c.KVDim()), grow(b.v, T*c.KVDim())
	b.gate, b.up = grow(b.gate, T*c.FFNDim), grow(b.up, T*c.FFNDim)
}

func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// Block is one transformer block on the residual stream b.x of the batch
// (spec/model.md §9): x += attention(rms_norm(x)); x += swiglu(rms_norm(x)).
// After each step the goldens name, b.after shows its output to a trace.
func (b *Batch) Block(l int) {
	w, pool := &b.m.Layers[l], b.m.Pool()

	b.rmsNormRows(b.h, b.x, w.AttnNorm)
	b.after(l, "attn_norm", b.h)
	// q = h Wqᵀ, k = h Wkᵀ, v = h Wvᵀ, in one call: one pass over the weights.
	pool.MatMuls(b.h, b.T, tensor.Product{Out: b.q, W: &w.Wq}, tensor.Product{Out: b.k, W: &w.Wk}, tensor.Product{Out: b.v, W: &w.Wv})
	b.applyRoPERows(b.q)
	b.applyRoPERows(b.k)
	b.after(l, "q_rope", b.q)
	b.after(l, "k_rope", b.k)
	b.after(l, "v", b.v)
	b.writeCache(l)
	b.attention.layer = l
	pool.Run(&b.attention, b.attentionParts())
	b.after(l, "attn", b.attn)
	pool.MatMul(b.proj, b.attn, &w.Wo, b.T)
	b.after(l, "attn_out", b.proj)
	tensor.Add(b.x, b.proj)
	b.after(l, "attn_resid", b.x)

	b.rmsNormRows(b.h, b.x, w.FFNNorm)
	b.after(l, "ffn_norm", b.h)
	b.SwiGLU(w)
	b.after(l, "ffn_hidden", b.gate)
	b.after(l, "ffn_out", b.proj)
	tensor.Add(b.x, b.proj)
	b.after(l, "out", b.x)
}

// writeCache appends each row's key and value to its session's cache of layer
// l. Keys go in transposed: column j of k becomes row j of K (see KVCache).
func (b *Batch) writeCache(l int) {
	kvDim := b.m.Config.KVDim()
	for i := 0; i < b.T; i++ {
		cache, pos := &b.session(i).cache, b.pos[i]
		for j, key := range b.k[i*kvDim : (i+1)*kvDim] {
			cache.K[l][j*cache.KStride+pos] = key
		}
		copy(cache.V[l][pos*kvDim:], b.v[i*kvDim:(i+1)*kvDim])
	}
}

// attentionParts is how the attention task is cut: a sequence's rows share one
// cache, so one part per KV head; rows of different sessions, one part per row
// and KV head.
func (b *Batch) attentionParts() int {
	if b.one {
		return b.m.Config.NKVHeads
	}
	return b.T * b.m.Config.NKVHeads
}

// rmsNormRows normalizes each row of x into out.
func (b *Batch) rmsNormRows(out, x, weight []float32) {
	d := b.m.Config.Dim
	for i := 0; i < b.T; i++ {
		tensor.RMSNorm(out[i*d:(i+1)*d], x[i*d:(i+1)*d], weight, b.m.Config.NormEps)
	}
}

// applyRoPERows rotates each row of x by its own position.
func (b *Batch) applyRoPERows(x []float32) {
	width := len(x) / b.T
	for i := 0; i < b.T; i++ {
		applyRoPE(b.m, x[i*width:(i+1)*width], b.pos[i])
	}
}

// applyRoPE rotates each adjacent pair (x[2i], x[2i+1]) of every head in x by
// the angle pos * theta_i (spec/model.md §7.2), read from the model's table.
func applyRoPE(m *model.Model, x []float32, pos int) {
	hd := m.Config.HeadDim()
	half := hd / 2
	cos, sin := m.RoPE(pos)
	for head := 0; head < len(x); head += hd {
		for i := 0; i < half; i++ {
			x0, x1 := x[head+2*i], x[head+2*i+1]
			x[head+2*i] = x0*cos[i] - x1*sin[i]
			x[head+2*i+1] = x0*sin[i] + x1*cos[i]
		}
	}
}

// attentionTask is causal grouped-query attention for the batch: a part per KV
// head, and per row when the rows are different sessions.
type attentionTask struct {
	b      *Batch
	layer  int
	scores [][]float32 // per worker: (rows, n) attention weights
}

func (a *attentionTask) Part(i, n, w int) {
	b, groups := a.b, a.b.m.Config.NKVHeads
	if b.one {
		b.Attention(a.layer, i, &a.scores[w])
		return
	}
	b.attendRow(a.layer, i/groups, i%groups, &a.scores[w])
}

// Attention is causal grouped-query attention (spec/model.md §7.3) for the query
// heads that read KV head g of layer l, for a batch of one session's rows; their
// outputs go to the heads' columns of b.attn. Row i, at position p+i, attends
// over cache positions 0..p+i. For each query head, with Q its (T, hd) rows:
//
//	attn = softmax(Q Kᵀ / sqrt(hd) + causal mask) V
//
// as two matrix products over the n = p+T cached positions, read in place: Kᵀ
// is (hd, n), rows of the transposed key cache, and V is (n, hd) with row stride
// kv_dim. A one-token batch stacks the group's n_rep heads as the rows of Q
// instead, so the group's keys and values are read once for all of them.
func (b *Batch) Attention(l, g int, scores *[]float32) {
	c := b.m.Config
	hd, qDim, nRep := c.HeadDim(), c.NHeads*c.HeadDim(), c.NRep()
	if b.T == 1 {
		b.attendRow(l, 0, g, scores)
		return
	}
	for h := g * nRep; h < (g+1)*nRep; h++ {
		b.attend(l, g, 0, b.q[h*hd:], qDim, b.T, b.attn[h*hd:], qDim, b.pos, scores)
	}
}

// attendRow is attention for row i alone over its session's cache, KV head g:
// the group's n_rep query heads stacked as the rows of Q.
func (b *Batch) attendRow(l, i, g int, scores *[]float32) {
	c := b.m.Config
	hd, qDim, nRep := c.HeadDim(), c.NHeads*c.HeadDim(), c.NRep()
	at := i*qDim + g*nRep*hd
	b.attend(l, g, i, b.q[at:], hd, nRep, b.attn[at:], hd, nil, scores)
}

// attend computes rows of attention over KV head g of row first's session:
// queries q (row stride ldq) in, outputs out (row stride ldo) out. chunk holds
// each query row's position when the query rows are the rows of one session's
// batch (row r at chunk[r]); it is nil when every query row is a head of batch
// row first, at that row's position.
func (b *Batch) attend(l, g, first int, q []float32, ldq, rows int, out []float32, ldo int, chunk []int, scores *[]float32) {
	c := b.m.Config
	hd, ctx := c.HeadDim(), c.ContextLength
	cache := &b.session(first).cache
	n := b.pos[first] + 1 // positions the query rows see
	if chunk != nil {
		n = chunk[rows-1] + 1 // the last row's, and each row masks the rest
	}
	*scores = grow(*scores, rows*ctx) // room for the whole context: no growth while decoding
	p := (*scores)[:rows*n]
	keysT, values := cache.K[l][g*hd*cache.KStride:], cache.V[l][g*hd:]
	tensor.MatMulNN(p, n, q, ldq, keysT, cache.KStride, rows, hd, n) // (rows, n) = Q Kᵀ
	scale := float32(1 / math.Sqrt(float64(hd)))
	for r := 0; r < rows; r++ {
		visible := n // the causal mask: positions <= this row's
		if chunk != nil {
			visible = chunk[r] + 1
		}
		row := p[r*n : (r+1)*n]
		for j := range row[:visible] {
			row[j] *= scale
		}
		tensor.Softmax(row[:visible])
		clear(row[visible:])
	}
	tensor.MatMulNN(out, ldo, p, n, values, c.KVDim(), rows, n, hd) // (rows, hd) = P V
}

// SwiGLU computes (silu(h W_gate^T) * (h W_up^T)) W_down^T of b.h into b.proj;
// the gated hidden stays in b.gate.
func (b *Batch) SwiGLU(w *model.Layer) {
	pool := b.m.Pool()
	pool.MatMuls(b.h, b.T, tensor.Product{Out: b.gate, W: &w.WGate}, tensor.Product{Out: b.up, W: &w.WUp})
	tensor.SwiGLUGate(b.gate, b.up) // gate = silu(gate) * up
	pool.MatMul(b.proj, b.gate, &w.WDown, b.T)
}

// The trace is a hook outside the math: Block calls after between its steps,
// and after does nothing unless the batch is one session's tokens and that
// session has a Trace.

// tracing reports whether the batch's activations go to a Trace.
func (b *Batch) tracing() bool { return b.one && b.sessions[0].Trace != nil }

// after shows the output of step of block l to the trace, as "blk.L.step".
func (b *Batch) after(l int, step string, value []float32) {
	if b.tracing() {
		b.traceRows("blk."+strconv.Itoa(l)+"."+step, value)
	}
}

// traceRows traces each row of a (T, width) activation.
func (b *Batch) traceRows(name string, value []float32) {
	if !b.tracing() {
		return
	}
	width := len(value) / b.T
	for i := 0; i < b.T; i++ {
		b.sessions[0].Trace(name, b.pos[i], value[i*width:(i+1)*width])
	}
}

// Logits runs tokens at positions 0..T-1 one decode step at a time in a fresh
// session of m and returns every position's logits (T, vocab_size): for tools
// that compare engines (goengine logits). Generation uses a Session directly;
// the forward pass to read is package llama's Forward.
func Logits(m *model.Model, tokens []int) ([][]float32, error) {
	s := NewSession(m)
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
