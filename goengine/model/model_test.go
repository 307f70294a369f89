package model

import (
	"math"
	"slices"
	"strings"
	"testing"

	"gollm/goengine/gguf"
	"gollm/goengine/internal/goldentest"
)

// seedConfig is the seed model of configs/gollm-85m.yaml.
var seedConfig = Config{VocabSize: 32768, Dim: 768, NLayers: 12, NHeads: 12, NKVHeads: 4, FFNDim: 1536,
	ContextLength: 2048, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: true}

func loadGolden(t *testing.T, name string) *Model {
	t.Helper()
	m, err := Load(goldentest.Open(t, name+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConfigMatchesGoldens(t *testing.T) {
	gqa, mha := loadGolden(t, "gqa").Config, loadGolden(t, "mha").Config
	want := Config{VocabSize: 320, Dim: 64, NLayers: 2, NHeads: 4, NKVHeads: 2, FFNDim: 192,
		ContextLength: 64, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: false}
	if gqa != want {
		t.Errorf("gqa config %+v, want %+v", gqa, want)
	}
	if mha.NKVHeads != mha.NHeads || !mha.TieEmbeddings {
		t.Errorf("mha config %+v: want n_kv_heads == n_heads and a tied head", mha)
	}
}

func TestSeedParamCount(t *testing.T) {
	seed := Config{VocabSize: 32768, Dim: 768, NLayers: 12, NHeads: 12, NKVHeads: 4, FFNDim: 1536,
		ContextLength: 2048, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: true}
	if got := seed.ParamCount(); got != 86_526_720 { // spec/model.md §3
		t.Errorf("ParamCount = %d, want 86,526,720", got)
	}
}

func TestValidate(t *testing.T) {
	good := Config{VocabSize: 10, Dim: 8, NLayers: 1, NHeads: 2, NKVHeads: 1, FFNDim: 4, ContextLength: 4, RopeTheta: 1e4, NormEps: 1e-5}
	cases := map[string]func(*Config){
		"dim (9) must be divisible by n_heads (2)":    func(c *Config) { c.Dim = 9 },
		"n_heads (2) must be divisible by n_kv_heads": func(c *Config) { c.NKVHeads = 3 },
		"must be even":                              func(c *Config) { c.Dim, c.NHeads, c.NKVHeads = 6, 2, 1 },
		"n_layers must be positive":                 func(c *Config) { c.NLayers = 0 },
		"norm_eps must be a positive finite number": func(c *Config) { c.NormEps = math.NaN() },
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for want, change := range cases {
		c := good
		change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", want, err)
		}
	}
}

// TestLoadViewsTheFile: a loaded model's matrices are the file's bytes, not
// copies (spec/format.md's F32, F16 and Q8_0 all stay in place).
func TestLoadViewsTheFile(t *testing.T) {
	c := Config{VocabSize: 64, Dim: 32, NLayers: 1, NHeads: 2, NKVHeads: 1, FFNDim: 64,
		ContextLength: 8, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: true}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.Q8_0} {
		data, err := RandomFile(c, typ, 5)
		if err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Parse(data, "random.gguf")
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := f.Tensor("blk.0.ffn_down.weight")
		raw := f.TensorData(info)
		before := make([]float32, c.FFNDim)
		m.Layers[0].WDown.Row(before, 0)
		raw[2], raw[3] = raw[2]^0x40, raw[3]^0x40 // in every type, bits of row 0's first value
		after := make([]float32, c.FFNDim)
		m.Layers[0].WDown.Row(after, 0)
		if slices.Equal(before, after) {
			t.Errorf("%s: changing the file's bytes did not change the loaded matrix: it was copied", typ)
		}
	}
}

// TestRoPEAnglesInFloat64: spec/model.md §7.2 asks for angles m·θ_i computed in
// float64. The goldens reach position 23 only, where float32 angles would pass
// too; at the seed's last positions the two differ by far more than the
// tolerance, so this checks the table there against the definition.
func TestRoPEAnglesInFloat64(t *testing.T) {
	c := seedConfig
	cos, sin := ropeTable(c, (&Model{Config: c, RopeScale: 1}).RopeFrequency)
	half := c.HeadDim() / 2
	worstFloat32 := 0.0
	for _, m := range []int{0, 1, 23, 1000, 2047} {
		for i := 0; i < half; i++ {
			angle := float64(m) * math.Pow(c.RopeTheta, -2*float64(i)/float64(c.HeadDim()))
			got, want := float64(cos[m*half+i]), math.Cos(angle)
			if math.Abs(got-want) > 1e-7 || math.Abs(float64(sin[m*half+i])-math.Sin(angle)) > 1e-7 {
				t.Fatalf("position %d pair %d: cos %v sin %v, want %v %v", m, i, got, sin[m*half+i], want, math.Sin(angle))
			}
			angle32 := float32(m) * float32(math.Pow(c.RopeTheta, -2*float64(i)/float64(c.HeadDim())))
			worstFloat32 = math.Max(worstFloat32, math.Abs(math.Cos(float64(angle32))-want))
		}
	}
	if worstFloat32 < 1e-5 { // the check above would not tell float32 angles apart
		t.Errorf("float32 angles stay within %g of float64 ones: this test proves nothing", worstFloat32)
	}
}
