package sampler

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"gollm/goengine/gguf"
)

func openGoldens(t *testing.T) *gguf.File {
	t.Helper()
	f, err := gguf.Open("../../goldens/sampler.gguf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// must fails the test on err, else returns v.
func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestRngMatchesGoldens(t *testing.T) {
	f := openGoldens(t)
	count := must[uint64](t)(f.Uint("rng.count"))
	if count < 4 {
		t.Fatalf("rng.count = %d", count)
	}
	for k := range count {
		key := func(s string) string { return fmt.Sprintf("rng.%d.%s", k, s) }
		r := NewRng(must[uint64](t)(f.Uint(key("seed"))))
		for i, want := range must[[]uint64](t)(f.Uint64Array(key("next_u64"))) {
			if got := r.NextU64(); got != want {
				t.Fatalf("%s[%d]: got %#x, golden %#x", key("next_u64"), i, got, want)
			}
		}
		for i, want := range must[[]float64](t)(f.Float64Array(key("uniform"))) {
			if got := r.Uniform(); got != want {
				t.Fatalf("%s[%d]: got %v, golden %v", key("uniform"), i, got, want)
			}
		}
	}
}

func TestSamplerMatchesGoldens(t *testing.T) {
	f := openGoldens(t)
	count := must[uint64](t)(f.Uint("sampler.count"))
	for k := range count {
		key := func(s string) string { return fmt.Sprintf("sampler.%d.%s", k, s) }
		s, err := New(must[float64](t)(f.Float(key("temperature"))), int(must[uint64](t)(f.Uint(key("top_k")))),
			must[float64](t)(f.Float(key("top_p"))), must[uint64](t)(f.Uint(key("seed"))))
		if err != nil {
			t.Fatal(err)
		}
		logits := must[[]float32](t)(f.Float32s(key("logits")))
		want := must[[]int32](t)(f.Int32Array(key("ids")))
		for i := range want {
			got := must[int](t)(s.Sample(logits))
			if got != int(want[i]) {
				t.Fatalf("sampler case %d draw %d: got id %d, golden %d", k, i, got, want[i])
			}
		}
		if got, want := s.rng.NextU64(), must[uint64](t)(f.Uint(key("next_u64"))); got != want {
			t.Fatalf("sampler case %d: generator at %#x after the samples, golden %#x (a skipped or extra draw)", k, got, want)
		}
	}
}

func TestSpecWorkedExamples(t *testing.T) {
	// spec/sampling.md §1 and §2, "Worked example".
	r := NewRng(0)
	if got := r.NextU64(); got != 0x7BBCB40D550682D0 {
		t.Errorf("Rng(0) first output %#x", got)
	}
	if got := NewRng(0x61C8864680B583EB).NextU64(); got != 0x0D83B3E29A21487A {
		t.Errorf("zero-guard seed first output %#x", got)
	}
	s, _ := New(0.8, 4, 0.9, 0)
	logits := []float32{1, 3, 2, 3, 0.5, -1}
	order, probs := s.Candidates(logits)
	if !slices.Equal(order, []int{1, 3, 2}) || math.Abs(probs[2]-0.12530251292436217) > 1e-15 {
		t.Errorf("candidates %v %v", order, probs)
	}
	var ids []int
	for range 8 {
		ids = append(ids, must[int](t)(s.Sample(logits)))
	}
	if !slices.Equal(ids, []int{3, 3, 3, 2, 3, 1, 1, 1}) {
		t.Errorf("ids %v", ids)
	}
}

func TestGreedyTiesAndNoDraw(t *testing.T) {
	s, _ := New(0, 0, 1, 9)
	before := s.rng.state
	if got := must[int](t)(s.Sample([]float32{0, 3, 1, 3})); got != 1 {
		t.Errorf("greedy tie: got %d, want the lowest id 1", got)
	}
	if s.rng.state != before {
		t.Error("greedy sampling advanced the generator")
	}
}

func TestFrequenciesFollowSoftmax(t *testing.T) {
	logits := []float32{2, 1, 0.5, 0, -1}
	s, _ := New(1, 0, 1, 5)
	const n = 40000
	counts := make([]int, len(logits))
	for range n {
		counts[must[int](t)(s.Sample(logits))]++
	}
	var sum float64
	for _, l := range logits {
		sum += math.Exp(float64(l))
	}
	for i, l := range logits {
		p := math.Exp(float64(l)) / sum
		if math.Abs(float64(counts[i])-n*p) > 5*math.Sqrt(n*p*(1-p))+1 { // 5 binomial sigmas
			t.Errorf("id %d drawn %d times, expected %.0f", i, counts[i], n*p)
		}
	}
}

func TestInvalidSettingsAndLogits(t *testing.T) {
	for _, c := range []struct {
		temperature, topP float64
		topK              int
		want              string
	}{
		{-1, 1, 0, "temperature"}, {math.NaN(), 1, 0, "temperature"}, {math.Inf(1), 1, 0, "temperature"},
		{1, 1, -1, "top_k"}, {1, 0, 0, "top_p"}, {1, 1.5, 0, "top_p"},
	} {
		if _, err := New(c.temperature, c.topK, c.topP, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%v, %d, %v): err = %v, want it to name %s", c.temperature, c.topK, c.topP, err, c.want)
		}
	}
	s, _ := New(1, 0, 1, 0)
	if _, err := s.Sample([]float32{0, float32(math.NaN())}); err == nil {
		t.Error("NaN logits: no error")
	}
	if _, err := s.Sample(nil); err == nil {
		t.Error("empty logits: no error")
	}
}

// TestCandidatesOrder checks the packed-integer sort against the definition
// (z descending, then id ascending) on logits with ties, both zeros and infinities.
func TestCandidatesOrder(t *testing.T) {
	logits := []float32{0.5, -1, 0.5, float32(math.Inf(-1)), 2, float32(math.Copysign(0, -1)), 0, -1e-30, 1e-30, float32(math.Inf(1)), -3}
	s, _ := New(0.7, 0, 1, 1)
	order, _ := s.Candidates(logits)
	want := []int{9, 4, 0, 2, 8, 5, 6, 7, 1, 10, 3}
	if !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
}

func BenchmarkSample32K(b *testing.B) {
	r := NewRng(3)
	logits := make([]float32, 32768)
	for i := range logits {
		logits[i] = float32(r.Uniform()*20 - 10)
	}
	s, _ := New(0.8, 0, 0.95, 1)
	b.ResetTimer() // set-up is not timed
	for range b.N {
		s.Sample(logits)
	}
}
