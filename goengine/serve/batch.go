package serve

import (
	"context"
	"runtime"
	"time"

	"gollm/goengine/engine"
)

// The decode loop of every request runs through one scheduler goroutine, which
// puts the decode steps that are waiting at the same moment into one batch
// (continuous batching): a step reads every weight once however many requests
// it carries, so while decoding is bound by reading the weights, N requests
// generate together nearly as fast as one alone (goengine bench --sessions N
// measures it). A batched row computes exactly what the session's own DecodeStep
// would, so a seeded request gives the same text under any load.

// stepRequest asks for one decode step of a session.
type stepRequest struct {
	session *engine.Session
	token   int
	done    chan stepResult // the request's own, reused for each of its steps
}

// stepResult is a step's logits (the session's own buffer) or its error.
type stepResult struct {
	logits []float32
	err    error
}

// straggler is how long a batch waits for the steps of requests still busy
// with their last token (sampling it, sending it): about twice the time a
// 32,768-token sample takes, so a request that is on its way is not left for
// the next batch, and short against a decode step.
const straggler = time.Millisecond

// schedule runs batches of steps until the server stops: it blocks for one,
// then takes the steps of the other decoding requests as they arrive, up to
// Parallel, waiting for stragglers at most the straggler time; runs them as one
// batch, answers each and yields. It answers every step it took, even when stopping.
func (s *Server) schedule() {
	batch := engine.NewBatch(s.model)
	var steps []stepRequest
	var sessions []*engine.Session
	var tokens []int
	timer := time.NewTimer(time.Hour)
	for {
		select {
		case first := <-s.steps:
			steps = append(steps[:0], first)
		case <-s.stopping.Done():
			return
		}
		timer.Reset(straggler)
	collect:
		for len(steps) < cap(s.sessions) && len(steps) < int(s.decoding.Load()) {
			select {
			case next := <-s.steps:
				steps = append(steps, next)
			case <-timer.C:
				break collect
			case <-s.stopping.Done():
				break collect
			}
		}
		timer.Stop()
		sessions, tokens = sessions[:0], tokens[:0]
		for _, step := range steps {
			sessions, tokens = append(sessions, step.session), append(tokens, step.token)
		}
		logits, err := batch.DecodeStep(sessions, tokens)
		s.batches.Add(1)
		s.batchedSteps.Add(int64(len(steps)))
		for i, step := range steps {
			result := stepResult{err: err}
			if err == nil {
				result.logits = logits[i]
			}
			step.done <- result
		}
		// Let other goroutines run before the next batch: on one P, the requests
		// just answered and this loop would otherwise hand the CPU back and forth
		// (Go runs a goroutine woken by a channel next, in the same time slice)
		// and a short generation would finish before a request still reading or
		// prefilling its prompt got a turn, so nothing would ever batch.
		runtime.Gosched()
	}
}

// decodeStep runs token through sess in the next batch and returns its logits.
func (s *Server) decodeStep(ctx context.Context, sess *engine.Session, token int, done chan stepResult) ([]float32, error) {
	select {
	case s.steps <- stepRequest{session: sess, token: token, done: done}:
	case <-s.stopping.Done():
		return nil, errStopped
	case <-ctx.Done():
		return nil, context.Cause(ctx) // errStopped when the server stops
	}
	// Taken: wait for the answer even if the client leaves, since the batch
	// is writing into this session's cache.
	result := <-done
	return result.logits, result.err
}
