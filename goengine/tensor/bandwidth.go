package tensor

import "time"

// MemoryBandwidth measures how fast threads goroutines read memory: a buffer of
// size bytes, far larger than the caches, streamed by each of this package's
// readers (one stream per thread through Dot, and the decode kernel's several
// rows at a time), the best bytes per second of a few passes. It is the ceiling
// a decode step is measured against, so it must be the fastest reader we have:
// a slower probe would flatter the engine.
func MemoryBandwidth(threads, size int) float64 {
	const cols = 1024 // the readers see the buffer as rows of 4 KiB
	rows := max(size/4/cols, threads)
	data := make([]float32, rows*cols)
	for i := range data {
		data[i] = 1 // touch every page before timing
	}
	x, out := make([]float32, cols), make([]float32, rows)
	p := NewPool(threads)
	defer p.Close()
	best := 0.0
	for _, task := range []Task{probeDot(data), &probeRows{data, x, out}} {
		for range 4 {
			start := time.Now()
			p.Run(task, threads)
			best = max(best, float64(4*len(data))/time.Since(start).Seconds())
		}
	}
	return best
}

// probeDot reads each part as one stream.
type probeDot []float32

func (d probeDot) Part(i, n, w int) {
	start, end := partRange(i, n, len(d), 1024)
	Dot(d[start:end], d[start:end])
}

// probeRows reads each part as the decode step's matrix-vector product does.
type probeRows struct{ w, x, out []float32 }

func (t *probeRows) Part(i, n, w int) {
	start, end := partRange(i, n, len(t.out), 16)
	matVecRowsF32(t.out, t.w, t.x, start, end)
}
