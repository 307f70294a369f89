package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"gollm/goengine/gguf"
	"gollm/goengine/model"
)

// seedConfig is the seed model of configs/gollm-85m.yaml.
var seedConfig = model.Config{VocabSize: 32768, Dim: 768, NLayers: 12, NHeads: 12, NKVHeads: 4, FFNDim: 1536,
	ContextLength: 2048, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: true}

func seedModel(b *testing.B) *model.Model {
	return seedModelOf(b, gguf.F32)
}

func seedModelOf(b *testing.B, typ gguf.TensorType) *model.Model {
	b.Helper()
	m, err := model.Random(seedConfig, typ, 1)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkDecodeStep measures one token through the seed model at position 128,
// after a 128-token prompt: every iteration rewinds the cache to that point.
func BenchmarkDecodeStep(b *testing.B) {
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.Q8_0} {
		b.Run(typ.String(), func(b *testing.B) { benchmarkDecodeStep(b, seedModelOf(b, typ)) })
	}
}

// BenchmarkDecodeStepFile is BenchmarkDecodeStep for each GGUF file named in
// $GOLLM_BENCH_GGUF (a list with the OS's path-list separator, ':' on Unix):
// published files in the types they mix, such as SmolLM2-135M's Q4_1 or
// Q4_K_M, which no random model stores. Skipped without it.
func BenchmarkDecodeStepFile(b *testing.B) {
	paths := filepath.SplitList(os.Getenv("GOLLM_BENCH_GGUF"))
	if len(paths) == 0 {
		b.Skip("set GOLLM_BENCH_GGUF to the GGUF files to measure")
	}
	for _, path := range paths {
		b.Run(filepath.Base(path), func(b *testing.B) {
			f, err := gguf.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			m, err := model.Load(f)
			if err != nil {
				b.Fatal(err)
			}
			benchmarkDecodeStep(b, m)
		})
	}
}

func benchmarkDecodeStep(b *testing.B, m *model.Model) {
	s := NewSession(m)
	prompt := make([]int, 128)
	for i := range prompt {
		prompt[i] = i * 7
	}
	if _, err := s.Prefill(prompt); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		s.cache.Len = len(prompt)
		if _, err := s.DecodeStep(42); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkPrefill128 measures a 128-token prompt through the seed model.
func BenchmarkPrefill128(b *testing.B) {
	m := seedModel(b)
	s := NewSession(m)
	prompt := make([]int, 128)
	for i := range prompt {
		prompt[i] = i * 7
	}
	b.ResetTimer()
	for range b.N {
		s.Reset()
		if _, err := s.Prefill(prompt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(128*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkDecodeBatch measures one decode step for 1, 2 and 4 sessions of the
// seed model at position 128 as one batch; tokens/s counts every session's token.
func BenchmarkDecodeBatch(b *testing.B) {
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		m := seedModelOf(b, typ)
		for _, n := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/sessions=%d", typ, n), func(b *testing.B) {
				sessions, tokens := make([]*Session, n), make([]int, n)
				for i := range sessions {
					sessions[i] = NewSession(m)
					prompt := make([]int, 128)
					for j := range prompt {
						prompt[j] = (i + j*7) % seedConfig.VocabSize
					}
					if _, err := sessions[i].Prefill(prompt); err != nil {
						b.Fatal(err)
					}
					tokens[i] = 42 + i
				}
				batch := NewBatch(m)
				b.ResetTimer()
				for range b.N {
					for _, s := range sessions {
						s.cache.Len = 128
					}
					if _, err := batch.DecodeStep(sessions, tokens); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
