package sampler

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// Sampler turns logits into token ids: temperature, then top-k, then top-p, then
// one uniform draw (spec/sampling.md). One Sampler continues one random stream.
type Sampler struct {
	Temperature float64
	TopK        int
	TopP        float64
	rng         *Rng

	// scratch reused across calls so that sampling allocates nothing per token
	order []int
	probs []float64
}

// New checks the settings and returns a Sampler seeded with seed.
func New(temperature float64, topK int, topP float64, seed uint64) (*Sampler, error) {
	if math.IsNaN(temperature) || math.IsInf(temperature, 0) || temperature < 0 {
		return nil, fmt.Errorf("invalid temperature %v: must be a finite number >= 0", temperature)
	}
	if topK < 0 {
		return nil, fmt.Errorf("invalid top_k %d: must be >= 0 (0 = no limit)", topK)
	}
	if math.IsNaN(topP) || topP <= 0 || topP > 1 {
		return nil, fmt.Errorf("invalid top_p %v: must be in (0, 1] (1 = no limit)", topP)
	}
	return &Sampler{Temperature: temperature, TopK: topK, TopP: topP, rng: NewRng(seed)}, nil
}

var errNaN = errors.New("sampler: logits contain NaN")

// Sample returns the next token id for one logits vector.
func (s *Sampler) Sample(logits []float32) (int, error) {
	if len(logits) == 0 {
		return 0, errors.New("sampler: empty logits")
	}
	for _, v := range logits {
		if v != v {
			return 0, errNaN
		}
	}
	if s.Temperature == 0 {
		return argmax(logits), nil // greedy draws nothing
	}
	order, probs := s.Candidates(logits)
	return order[pick(probs, s.rng.Uniform())], nil
}

// Candidates returns the ids that may be drawn, most likely first, and their
// probabilities. It draws nothing; the slices are reused by the next call.
func (s *Sampler) Candidates(logits []float32) ([]int, []float64) {
	n := len(logits)
	order := s.order[:0]
	for i := 0; i < n; i++ {
		order = append(order, i)
	}
	z := func(i int) float64 { return float64(logits[i]) / s.Temperature }
	// z descending, then id ascending: a total order, so any correct sort agrees.
	sort.Slice(order, func(a, b int) bool {
		za, zb := z(order[a]), z(order[b])
		if za != zb {
			return za > zb
		}
		return order[a] < order[b]
	})
	if s.TopK > 0 && s.TopK < n {
		order = order[:s.TopK]
	}
	probs := s.probs[:0]
	top := z(order[0])
	var sum float64
	for _, id := range order {
		w := math.Exp(z(id) - top)
		probs = append(probs, w)
		sum += w // left to right, as the spec says
	}
	for i := range probs {
		probs[i] /= sum
	}
	if s.TopP < 1 {
		keep, cumulative := len(probs), 0.0
		for i, p := range probs {
			cumulative += p
			if cumulative >= s.TopP {
				keep = i + 1
				break
			}
		}
		order, probs = order[:keep], probs[:keep]
		sum = 0
		for _, p := range probs {
			sum += p
		}
		for i := range probs {
			probs[i] /= sum
		}
	}
	s.order, s.probs = order, probs
	return order, probs
}

// argmax returns the first index of the largest value: the lowest id wins ties.
func argmax(values []float32) int {
	best := 0
	for i, v := range values {
		if v > values[best] {
			best = i
		}
	}
	return best
}

// pick returns the index of the first cumulative probability above u (the last if
// rounding left none).
func pick(probs []float64, u float64) int {
	var cumulative float64
	for i, p := range probs {
		cumulative += p
		if u < cumulative {
			return i
		}
	}
	return len(probs) - 1
}
