package tensor

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Task is work cut into parts: Part(i, n, w) does part i of n on worker w
// (0 ≤ w < Threads(), an index for per-worker scratch). Parts are claimed one at
// a time by whichever workers are running, so every part must touch memory no
// other part writes.
type Task interface {
	Part(i, n, w int)
}

// Pool runs the matrix products, and any other Task, on a fixed set of
// goroutines started once, so a decode step starts none and allocates nothing.
// The calling goroutine works too, as worker 0. One task runs at a time (a mutex
// serialises callers): each already keeps every core busy, so sessions may share
// one pool.
//
// Two measurements shaped it. A decode step is about a hundred products of tens
// of microseconds each, and a parked goroutine takes the Go scheduler and the OS
// about as long to wake: two threads were slower than one on a (768, 768)
// product. So workers spin on the pool's state for a while after each task and
// park only when no work has come for spinLimit polls. And when another process
// holds a core, a worker that owns a fixed share of the rows stalls everyone
// until the OS runs it again, and decode fell below the speed of one thread.
// So a task is cut into more parts than workers, and the parts are
// claimed one by one: whoever runs does the work, and the caller waits only for
// parts already claimed.
type Pool struct {
	threads int
	mu      sync.Mutex
	state   atomic.Uint64 // generation<<32 | the next part to claim
	slots   [2]taskSlot   // the task of each generation, alternating
	workers []poolWorker
	closed  atomic.Bool

	// Scratch, reused by every call under mu.
	matVec matVecTask
	matMul matMulTask
	acts   blockActs // the activations quantised for the decode products
	tiles  [][]float32
}

// taskSlot holds one generation's task. A generation's slot is written again
// only two generations later, after every part of it is done, so a worker that
// claimed a part reads the task it claimed.
type taskSlot struct {
	task  Task
	parts atomic.Uint64 // atomic: a worker late by two generations may read it as it is rewritten
	done  atomic.Uint64 // parts finished
}

type poolWorker struct {
	asleep atomic.Bool   // parked, or about to park, on wake
	wake   chan struct{} // a token from publish when it finds the worker asleep
}

// spinLimit polls (with a yield every 16) last longer than the gaps between the
// products of a decode step, and short enough to leave an idle core alone.
const spinLimit = 1 << 12

// NewPool starts threads-1 worker goroutines (the caller is the last thread).
func NewPool(threads int) *Pool {
	if threads < 1 {
		panic(fmt.Sprintf("tensor.NewPool: %d threads", threads))
	}
	p := &Pool{threads: threads, tiles: make([][]float32, threads), workers: make([]poolWorker, threads-1)}
	for i := range p.workers {
		p.workers[i].wake = make(chan struct{}, 1)
		go p.work(i + 1)
	}
	return p
}

// Threads is the number of workers, the caller included.
func (p *Pool) Threads() int { return p.threads }

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed.Store(true)
	p.publish(nil, 0)
}

// work is worker w's loop: wait for a new generation, claim its parts.
func (p *Pool) work(w int) {
	worker := &p.workers[w-1]
	for seen := uint64(0); ; {
		seen = p.await(worker, seen)
		if p.closed.Load() {
			return
		}
		p.claim(w)
	}
}

// await returns the first generation after seen: spinning, then parked.
func (p *Pool) await(w *poolWorker, seen uint64) uint64 {
	for spin := 0; spin < spinLimit; spin++ {
		if g := p.state.Load() >> 32; g != seen {
			return g
		}
		if spin%16 == 15 {
			runtime.Gosched()
		}
	}
	w.asleep.Store(true)
	if g := p.state.Load() >> 32; g != seen && w.asleep.CompareAndSwap(true, false) {
		return g // work came while we announced sleep, and nobody sent a token
	}
	<-w.wake
	return p.state.Load() >> 32
}

// claim does parts of the current generation until none is left. One atomic
// add claims a part: the counter is shared by every core, and each touch of it
// moves its cache line. A worker late for a generation claims parts of the
// current one, which is what it should do; the slot it reads belongs to that
// generation until all its parts, this one included, are done.
func (p *Pool) claim(w int) {
	for {
		state := p.state.Add(1) - 1
		slot := &p.slots[(state>>32)%2]
		part, parts := state&0xffffffff, slot.parts.Load()
		if part >= parts {
			return
		}
		slot.task.Part(int(part), int(parts), w)
		slot.done.Add(1)
	}
}

// publish starts a new generation of parts parts of t and wakes the workers
// that parked. The caller holds mu, and the previous generation is done.
func (p *Pool) publish(t Task, parts int) *taskSlot {
	gen := p.state.Load()>>32 + 1
	slot := &p.slots[gen%2]
	slot.task = t
	slot.parts.Store(uint64(parts))
	slot.done.Store(0)
	p.state.Store(gen << 32)
	for i := range p.workers {
		if w := &p.workers[i]; w.asleep.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
	return slot
}

// Run does parts parts of t in parallel and returns when all are done.
func (p *Pool) Run(t Task, parts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.run(t, parts)
}

// run is Run for a caller holding mu.
func (p *Pool) run(t Task, parts int) {
	if parts <= 1 || p.threads == 1 {
		for i := range parts {
			t.Part(i, parts, 0)
		}
		return
	}
	slot := p.publish(t, parts)
	p.claim(0)
	for spin := 0; slot.done.Load() != uint64(parts); spin++ {
		if spin%16 == 15 {
			runtime.Gosched()
		}
	}
	slot.task = nil
}

// partRange is part i of n of the range [0, total), in whole multiples of
// align so the kernels' tiles are not cut.
func partRange(i, n, total, align int) (start, end int) {
	units := (total + align - 1) / align
	start = min(units*i/n*align, total)
	end = min(units*(i+1)/n*align, total)
	return start, end
}

// serialWork is the number of multiply-adds below which a product runs on the
// calling goroutine alone: waking the workers costs more than it saves.
const serialWork = 1 << 15

// partBytes is the weight bytes of one part of a product: long enough that a
// part is one efficient stream and claiming it costs little (a (768, 768) F32
// product is 5 parts, the seed's Q8_0 output head 52), short enough that when a
// worker is held up the others take over most of its share.
const partBytes = 512 << 10

// partsFor cuts a product of work multiply-adds over bytes of weights into parts.
func (p *Pool) partsFor(work int, bytes int64) int {
	if work < serialWork || p.threads == 1 {
		return 1
	}
	return max(int(bytes/partBytes), p.threads)
}

// MatVec computes out = W x, that is x Wᵀ for one row x, for W of shape
// (len(out), len(x)). Like every product here its arguments are the output,
// then X, then W.
func (p *Pool) MatVec(out, x []float32, w *Matrix) {
	p.MatMuls(x, 1, Product{out, w})
}

// Product is one output of MatMuls: Out = X Wᵀ.
type Product struct {
	Out []float32
	W   *Matrix
}

// maxProducts is the most products one MatMuls call takes: q, k and v.
const maxProducts = 3

// smallBatch is the most tokens a product takes one weight row at a time, with
// the decode kernels: up to here it stays bound by reading the weights, and
// every token gets exactly the arithmetic of a lone decode step, so a batch of
// sessions decodes as each would alone. Beyond it, the matmul kernels.
const smallBatch = 8

// MatMuls computes each product's Out = X Wᵀ for the same input X (T, cols), as
// MatMul does. For a few tokens the products run as one task, their rows split
// over the threads as if they were one matrix: one wake-up of the workers and
// one long stream of rows instead of one per matrix.
func (p *Pool) MatMuls(x []float32, T int, products ...Product) {
	if len(products) > maxProducts {
		panic(fmt.Sprintf("tensor.MatMuls: %d products, at most %d", len(products), maxProducts))
	}
	for _, pr := range products {
		if len(x) != T*pr.W.Cols || len(pr.Out) != T*pr.W.Rows {
			panic(fmt.Sprintf("tensor.MatMuls: (%d, %d) matrix with %d tokens, %d inputs and %d outputs", pr.W.Rows, pr.W.Cols, T, len(x), len(pr.Out)))
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if T > smallBatch {
		for _, pr := range products {
			p.matMulLocked(pr.Out, pr.W, x, T)
		}
		return
	}
	// Decode steps: each row of weights is streamed from memory once and
	// multiplied by every token while it is in cache.
	t := &p.matVec
	*t = matVecTask{x: x, T: T, n: len(products)}
	work, bytes, cols := 0, int64(0), 0
	var formats activationFormat
	for i, pr := range products {
		t.products[i] = pr
		t.rows += pr.W.Rows
		work += T * pr.W.Rows * pr.W.Cols
		bytes += pr.W.ByteSize()
		cols = pr.W.Cols // the same for every product: x is (T, cols)
		formats |= activationFormatOf(pr.W)
	}
	// Activations are quantised per block as llama.cpp does, once for all the
	// products, so the inner loops multiply int8 by int8 (spec/model.md §11).
	p.acts.quantize(x, T, cols, formats)
	for tok := range T {
		t.acts[tok] = p.acts.token(tok)
	}
	p.run(t, p.partsFor(work, bytes))
}

type matVecTask struct {
	products [maxProducts]Product
	n, rows  int // products, and their rows in all
	T        int // tokens
	x        []float32
	acts     [smallBatch]blockAct // each token's x in the formats the products need
}

// Part does rows [start, end) of the products' rows laid end to end.
func (t *matVecTask) Part(i, n, w int) {
	start, end := partRange(i, n, t.rows, 16)
	for _, pr := range t.products[:t.n] {
		if lo, hi := max(start, 0), min(end, pr.W.Rows); lo < hi {
			t.rowsOf(pr, lo, hi)
		}
		start, end = start-pr.W.Rows, end-pr.W.Rows
	}
}

// rowsOf computes rows [start, end) of one product for every token, eight rows
// at a time so that they stay in L1 while each token passes over them.
func (t *matVecTask) rowsOf(pr Product, start, end int) {
	w, rows, cols := pr.W, pr.W.Rows, pr.W.Cols
	for r0 := start; r0 < end; r0 += 8 {
		r1 := min(r0+8, end)
		for tok := 0; tok < t.T; tok++ {
			out, x, a := pr.Out[tok*rows:(tok+1)*rows], t.x[tok*cols:(tok+1)*cols], &t.acts[tok]
			switch w.Type {
			case F32:
				matVecRowsF32(out, w.F32, x, r0, r1)
			case F16:
				matVecRowsF16(out, w.F16, cols, x, r0, r1)
			case Q8_0:
				matVecRowsQ8(out, w.Q8, cols/Q8BlockSize*Q8BlockBytes, a.q8, a.d8, r0, r1)
			case Blocks:
				matVecRowsBlocks(out, w, a, r0, r1)
			}
		}
	}
}

// MatMul computes out = X Wᵀ for T rows of activations: X is (T, cols), W is
// (rows, cols) and out is (T, rows), all row-major. Each weight is read once for
// all T tokens, which makes a prompt compute-bound instead of memory-bound.
func (p *Pool) MatMul(out, x []float32, w *Matrix, T int) {
	p.MatMuls(x, T, Product{out, w})
}

// matMulLocked is MatMul for T > smallBatch and a caller holding mu.
func (p *Pool) matMulLocked(out []float32, w *Matrix, x []float32, T int) {
	t := &p.matMul
	*t = matMulTask{out: out, w: w, x: x, T: T, tiles: p.tiles}
	p.run(t, p.partsFor(T*w.Rows*w.Cols, w.ByteSize()))
}

// tileRows is how many rows of a matrix not in F32 are widened to float32 at a
// time for MatMul: 16 rows of 1536 columns are 96 KiB, at home in L2 while all T
// tokens pass over them.
const tileRows = 16

type matMulTask struct {
	out   []float32
	w     *Matrix
	x     []float32
	T     int
	tiles [][]float32 // one float32 tile per worker
}

func (t *matMulTask) Part(i, n, worker int) {
	w, cols := t.w, t.w.Cols
	start, end := partRange(i, n, w.Rows, tileRows)
	if start == end {
		return
	}
	if w.Type == F32 {
		MatMulNT(t.out[start:], w.Rows, t.x, cols, w.F32[start*cols:end*cols], cols, t.T, cols, end-start)
		return
	}
	t.tiles[worker] = grow(t.tiles[worker], tileRows*cols)
	tile := t.tiles[worker]
	for r0 := start; r0 < end; r0 += tileRows {
		rows := min(tileRows, end-r0)
		for r := 0; r < rows; r++ {
			w.Row(tile[r*cols:(r+1)*cols], r0+r)
		}
		MatMulNT(t.out[r0:], w.Rows, t.x, cols, tile[:rows*cols], cols, t.T, cols, rows)
	}
}

// grow returns s resliced to n elements, reallocated only when too small.
func grow[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}
