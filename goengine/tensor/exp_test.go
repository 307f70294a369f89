package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The implementations under test and benchmark: the generic ones here, the
// assembly ones appended by exp_amd64_test.go when the CPU has them.
type (
	namedExp struct {
		name string
		f    func(dst, src []float32)
	}
	namedSoftmax struct {
		name string
		f    func(x []float32)
	}
	namedSwiGLU struct {
		name string
		f    func(gate, up []float32)
	}
)

var (
	expImpls     = []namedExp{{"generic", expGeneric}}
	softmaxImpls = []namedSoftmax{{"generic", softmaxGeneric}}
	swiGLUImpls  = []namedSwiGLU{{"generic", swiGLUGateGeneric}}
)

// softmaxMathExp is the Softmax this file's kernels replaced: math.Exp per
// element, sum in float64. It is the benchmarks' baseline.
func softmaxMathExp(x []float32) {
	if len(x) == 0 {
		return
	}
	maxValue := x[0]
	for _, v := range x[1:] {
		maxValue = max(maxValue, v)
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - maxValue)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// swiGLUMathExp is the model's SwiGLU loop before SwiGLUGate.
func swiGLUMathExp(gate, up []float32) {
	for i, g := range gate {
		gate[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
	}
}

// softmaxRef is the definition in float64.
func softmaxRef(x []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	out := make([]float64, len(x))
	var sum float64
	for i, v := range x {
		out[i] = math.Exp(float64(v) - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

func ulpsApart(a, b float32) int64 {
	d := int64(int32(math.Float32bits(a))) - int64(int32(math.Float32bits(b)))
	return max(d, -d)
}

// TestExpMatchesMathExp sweeps [-87.33, 88.37], where exp is a normal float32,
// on a dense grid and at random points: the relative error against math.Exp
// must stay within 2e-7 (about 2 ulp), and every implementation within 2 ulp
// of expf.
func TestExpMatchesMathExp(t *testing.T) {
	const lo, hi, grid = -87.33, 88.37, 1 << 22
	r := rand.New(rand.NewPCG(31, 32))
	src := make([]float32, 0, 2*grid)
	for i := range grid {
		src = append(src, float32(lo+(hi-lo)*float64(i)/(grid-1)))
	}
	for range grid {
		src = append(src, float32(lo+(hi-lo)*r.Float64()))
	}
	// Small arguments, where the polynomial alone decides.
	for i := -2000; i <= 2000; i++ {
		src = append(src, float32(i)*1e-4)
	}
	want := make([]float32, len(src))
	expGeneric(want, src)
	got := make([]float32, len(src))
	for _, impl := range expImpls {
		impl.f(got, src)
		worst, worstAt := 0.0, float32(0)
		for i, x := range src {
			e := math.Exp(float64(x))
			if rel := math.Abs(float64(got[i])-e) / e; rel > worst {
				worst, worstAt = rel, x
			}
			if d := ulpsApart(got[i], want[i]); d > 2 {
				t.Errorf("%s: exp(%v) = %v, expf gives %v: %d ulp apart", impl.name, x, got[i], want[i], d)
				break
			}
		}
		t.Logf("%s: max relative error %.3g at x = %v", impl.name, worst, worstAt)
		if worst > 2e-7 {
			t.Errorf("%s: max relative error %.3g at x = %v, want <= 2e-7", impl.name, worst, worstAt)
		}
	}
}

// TestExpOutOfRange: exactly 0 below -87.68 (exp(-Inf) included), a finite
// 2.4e38 above expHi, NaN through.
func TestExpOutOfRange(t *testing.T) {
	inf := float32(math.Inf(1))
	src := []float32{-inf, -1e30, -1000, -100, -88, -87.7, 0, 88.5, 89, 1000, inf, float32(math.NaN())}
	top := float32(math.Exp(float64(float32(expHi))))
	for _, impl := range expImpls {
		got := make([]float32, len(src))
		impl.f(got, src)
		for i, x := range src {
			var ok bool
			switch {
			case x != x:
				ok = got[i] != got[i]
			case x == 0:
				ok = got[i] == 1
			case x < -87.68:
				ok = got[i] == 0 && !math.Signbit(float64(got[i]))
			default:
				ok = math.Abs(float64(got[i]-top)) <= 2e-7*float64(top)
			}
			if !ok {
				t.Errorf("%s: exp(%v) = %v", impl.name, x, got[i])
			}
		}
	}
}

// testLengths covers every tail of the 8- and 16-lane loops, then a few long rows.
func testLengths() []int {
	var ns []int
	for n := range 71 {
		ns = append(ns, n)
	}
	return append(ns, 127, 128, 129, 640, 1000, 2048, 4099)
}

// guarded returns a slice of n values at offset inside a buffer whose other
// elements hold a sentinel, and a check that they still do.
func guarded(n, offset int) ([]float32, func() bool) {
	const sentinel = 42.5
	buf := make([]float32, n+offset+17)
	for i := range buf {
		buf[i] = sentinel
	}
	x := buf[offset : offset+n : offset+n]
	return x, func() bool {
		for i, v := range buf {
			if (i < offset || i >= offset+n) && v != sentinel {
				return false
			}
		}
		return true
	}
}

// TestSoftmaxMatchesDefinition compares each implementation with the float64
// definition and with the generic one on rows that are random, shifted far
// from 0, masked with -Inf, spread enough to underflow, and all equal.
// Tolerance, relative: 5e-7 + 1e-7·sqrt(n) (the exp's 1e-7, the float32 lane
// sums, the scaling) + |x - max|·2^-24 (x - max rounded to float32, as in the
// old code); absolute: 1e-37 for underflow.
func TestSoftmaxMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	kinds := map[string]func(i int) float32{
		"normal":  func(int) float32 { return float32(r.NormFloat64()) },
		"shifted": func(int) float32 { return 1000 + float32(r.NormFloat64()) },
		"wide":    func(int) float32 { return 30 * float32(r.NormFloat64()) },
		"equal":   func(int) float32 { return -500 },
		"masked": func(i int) float32 {
			if i%3 == 1 {
				return float32(math.Inf(-1))
			}
			return 4 * float32(r.NormFloat64())
		},
	}
	for _, impl := range softmaxImpls {
		for kind, gen := range kinds {
			for _, n := range testLengths() {
				for _, offset := range []int{0, 1, 3} {
					x, intact := guarded(n, offset)
					for i := range x {
						x[i] = gen(i)
					}
					want := softmaxRef(x)
					orig := append([]float32(nil), x...)
					generic := append([]float32(nil), x...)
					softmaxGeneric(generic)
					impl.f(x)
					m := float32(math.Inf(-1))
					for _, v := range orig {
						m = max(m, v)
					}
					for i, v := range x {
						tol := 5e-7 + 1e-7*math.Sqrt(float64(n))
						if want[i] != 0 {
							tol += math.Abs(float64(orig[i])-float64(m)) * 0x1p-24
						}
						if d := math.Abs(float64(v) - want[i]); d > tol*want[i]+1e-37 || d != d {
							t.Fatalf("%s %s n=%d offset=%d: x[%d] = %v, want %v, generic %v", impl.name, kind, n, offset, i, v, want[i], generic[i])
						}
						if d := math.Abs(float64(v - generic[i])); d > tol*float64(generic[i])+1e-37 {
							t.Fatalf("%s %s n=%d offset=%d: x[%d] = %v, generic %v", impl.name, kind, n, offset, i, v, generic[i])
						}
						if want[i] == 0 && v != 0 {
							t.Fatalf("%s %s n=%d: masked x[%d] = %v, want 0", impl.name, kind, n, i, v)
						}
					}
					if !intact() {
						t.Fatalf("%s %s n=%d offset=%d: wrote outside the row", impl.name, kind, n, offset)
					}
				}
			}
		}
	}
}

func TestSoftmaxEdgeCases(t *testing.T) {
	for _, impl := range softmaxImpls {
		impl.f(nil)
		one := []float32{-3.5}
		impl.f(one)
		if one[0] != 1 {
			t.Errorf("%s: Softmax([-3.5]) = %v, want [1]", impl.name, one)
		}
		x := []float32{1000, 1001, 999}
		impl.f(x)
		if math.Abs(float64(x[0]+x[1]+x[2]-1)) > 1e-6 || !(x[1] > x[0] && x[0] > x[2]) {
			t.Errorf("%s: Softmax([1000 1001 999]) = %v", impl.name, x)
		}
	}
}

// TestSwiGLUGateMatchesDefinition compares each implementation with
// z/(1+exp(-z))·up in float64, including |z| up to 1000. Tolerance: 5e-7 relative (exp, +1, divide, multiply), plus
// |z·up|·1e-38 absolute for z < -88.37, where exp(-z) saturates at 2.4e38.
func TestSwiGLUGateMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	extremes := []float32{-1000, -100, -88.5, -87, -20, -1e-20, 0, 1e-20, 20, 88.5, 100, 1000}
	ns := append(testLengths(), 1536, 3*1536+5)
	for _, impl := range swiGLUImpls {
		for _, n := range ns {
			for _, offset := range []int{0, 1, 3} {
				gate, intact := guarded(n, offset)
				up := randomSlice(r, n+offset)[offset:]
				for i := range gate {
					gate[i] = 4 * float32(r.NormFloat64())
					if i%5 == 2 {
						gate[i] = extremes[(i/5)%len(extremes)]
					}
				}
				orig := append([]float32(nil), gate...)
				generic := append([]float32(nil), gate...)
				swiGLUGateGeneric(generic, up)
				impl.f(gate, up)
				for i, z := range orig {
					zf := float64(z)
					want := zf / (1 + math.Exp(-zf)) * float64(up[i])
					got := float64(gate[i])
					tol := 5e-7*math.Abs(want) + 1e-38*math.Abs(zf*float64(up[i]))
					if d := math.Abs(got - want); !(d <= tol) {
						t.Fatalf("%s n=%d offset=%d: silu(%v)·%v = %v, want %v, generic %v", impl.name, n, offset, z, up[i], got, want, generic[i])
					}
					if d := math.Abs(got - float64(generic[i])); !(d <= tol) {
						t.Fatalf("%s n=%d offset=%d: silu(%v)·%v = %v, generic %v", impl.name, n, offset, z, up[i], got, generic[i])
					}
				}
				if !intact() {
					t.Fatalf("%s n=%d offset=%d: wrote outside gate", impl.name, n, offset)
				}
			}
		}
	}
}

// BenchmarkSoftmax runs in place: after the first call each row holds
// probabilities, which cost the same as any finite input.
func BenchmarkSoftmax(b *testing.B) {
	impls := append([]namedSoftmax{{"mathexp", softmaxMathExp}}, softmaxImpls...)
	for _, n := range []int{64, 640, 2048} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("n=%d/%s", n, impl.name), func(b *testing.B) {
				x := randomSlice(rand.New(rand.NewPCG(61, 62)), n)
				b.ResetTimer() // set-up is not timed
				for range b.N {
					impl.f(x)
				}
			})
		}
	}
}

// BenchmarkSwiGLUGate runs in place on a stable fixed point: with z in
// [-2, -0.05] and up = 1 + exp(-z), silu(z)·up = z again, and rounding errors
// shrink from one call to the next, so the inputs stay what they were.
func BenchmarkSwiGLUGate(b *testing.B) {
	impls := append([]namedSwiGLU{{"mathexp", swiGLUMathExp}}, swiGLUImpls...)
	for _, n := range []int{1536, 1536 * 128} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("n=%d/%s", n, impl.name), func(b *testing.B) {
				r := rand.New(rand.NewPCG(71, 72))
				gate, up := make([]float32, n), make([]float32, n)
				for i := range gate {
					z := -0.05 - 1.95*r.Float64()
					gate[i], up[i] = float32(z), float32(1+math.Exp(-z))
				}
				b.ResetTimer() // set-up is not timed
				for range b.N {
					impl.f(gate, up)
				}
			})
		}
	}
}
