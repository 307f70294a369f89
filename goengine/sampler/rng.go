// Package sampler picks the next token from logits exactly as spec/sampling.md
// defines it, so that Go and the Python reference (jaxmodel/sampler.py) draw the
// same token ids from the same logits, settings and seed.
package sampler

const goldenGamma = 0x9E3779B97F4A7C15

// splitmix64 scrambles a seed so that nearby seeds give unrelated streams.
func splitmix64(z uint64) uint64 {
	z += goldenGamma
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Rng is xorshift64*: a 64-bit state, three shifts and a multiply per draw.
type Rng struct {
	state uint64
}

// NewRng seeds a generator through SplitMix64.
func NewRng(seed uint64) *Rng {
	state := splitmix64(seed)
	if state == 0 { // zero is a fixed point of xorshift
		state = goldenGamma
	}
	return &Rng{state: state}
}

// NextU64 returns the next 64 random bits.
func (r *Rng) NextU64() uint64 {
	x := r.state
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	r.state = x
	return x * 0x2545F4914F6CDD1D
}

// Uniform returns a float64 in [0, 1) from the top 53 bits; every value is exact.
func (r *Rng) Uniform() float64 {
	return float64(r.NextU64()>>11) * (1.0 / (1 << 53))
}
