package model

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"gollm/goengine/gguf"
	"gollm/goengine/tensor"
)

// Layer holds one block's weights (spec/format.md §7 names): norm weights as
// float32, matrices row-major in their stored type.
type Layer struct {
	AttnNorm []float32     // (dim)
	Wq       tensor.Matrix // (n_heads*head_dim, dim)
	Wk       tensor.Matrix // (kv_dim, dim)
	Wv       tensor.Matrix // (kv_dim, dim)
	Wo       tensor.Matrix // (dim, n_heads*head_dim)
	FFNNorm  []float32     // (dim)
	WGate    tensor.Matrix // (ffn_dim, dim)
	WUp      tensor.Matrix // (ffn_dim, dim)
	WDown    tensor.Matrix // (dim, ffn_dim)
}

// Model is a loaded model: config and weights, shared read-only by sessions.
type Model struct {
	Config     Config
	TokenEmbd  tensor.Matrix // (vocab_size, dim)
	Layers     []Layer
	OutputNorm []float32     // (dim)
	Output     tensor.Matrix // (vocab_size, dim); the same data as TokenEmbd when tied

	// A classifier's head (spec/format.md §6.3); both nil in a language model.
	Labels     []string       // llama.classifier.output_labels: the label of each row of Classifier
	Classifier *tensor.Matrix // (n_classes, dim) cls.output.weight

	// Published files may turn RoPE more slowly (spec/model.md §7.2): LLaMA
	// 3.1/3.2's frequency factors divide θ_i, linear scaling divides every θ_i.
	RopeFreqs []float32 // (head_dim/2) rope_freqs.weight, or nil
	RopeScale float64   // llama.rope.scaling.factor of linear scaling, 1 when none

	pool             *tensor.Pool // the goroutines every product runs on
	ropeCos, ropeSin []float32    // (context_length, head_dim/2), built in float64
}

// Pool is the model's goroutines, on which the fast path (package engine) runs
// every product; they stop when the model is garbage collected.
func (m *Model) Pool() *tensor.Pool { return m.pool }

// RopeFrequency is θ_i of pair i (spec/model.md §7.2): theta^(-2i/head_dim),
// divided by the file's frequency factor of the pair and its linear scale.
func (m *Model) RopeFrequency(i int) float64 {
	c := m.Config
	f := math.Pow(c.RopeTheta, -2*float64(i)/float64(c.HeadDim())) / m.RopeScale
	if m.RopeFreqs != nil {
		f /= float64(m.RopeFreqs[i])
	}
	return f
}

// RoPE is the rotation of position pos (spec/model.md §7.2): cos and sin of
// pos * theta_i for each pair i, head_dim/2 values each, from the table Load
// builds in float64. pos must be in 0..context_length-1.
func (m *Model) RoPE(pos int) (cos, sin []float32) {
	half := m.Config.HeadDim() / 2
	return m.ropeCos[pos*half : (pos+1)*half], m.ropeSin[pos*half : (pos+1)*half]
}

// Load reads and checks a model file (spec/format.md §9 stages 2 and 3). The
// matrices are views of the file's bytes, which are memory-mapped: loading
// copies nothing but the norm weights, and f must stay open while the model is
// used. Products run on runtime.GOMAXPROCS(0) goroutines.
func Load(f *gguf.File) (*Model, error) {
	c, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	if err := checkCounts(f, c); err != nil {
		return nil, err
	}
	labels, err := readLabels(f)
	if err != nil {
		return nil, err
	}
	if err := checkTensors(f, c, len(labels)); err != nil {
		return nil, err
	}
	m, err := readWeights(f, c, labels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	if m.RopeScale, err = ropeScale(f); err != nil {
		return nil, err
	}
	m.ropeCos, m.ropeSin = ropeTable(c, m.RopeFrequency)
	m.pool = tensor.NewPool(runtime.GOMAXPROCS(0))
	// The workers hold the pool, not the model: stop them when the model goes.
	// (A finalizer rather than runtime.AddCleanup, which needs Go 1.24.)
	runtime.SetFinalizer(m, func(m *Model) { m.pool.Close() })
	return m, nil
}

// RopeFreqsTensor is the optional (head_dim/2) tensor of RoPE frequency factors.
const RopeFreqsTensor = "rope_freqs.weight"

// ropeScale is the factor of linear RoPE scaling (llama.rope.scaling.type
// "linear" and llama.rope.scaling.factor), or 1 without scaling; other kinds
// of scaling ConfigFromGGUF refused.
func ropeScale(f *gguf.File) (float64, error) {
	if scaling, err := f.String("llama.rope.scaling.type"); err != nil || scaling != "linear" {
		return 1, nil
	}
	factor, err := f.Float("llama.rope.scaling.factor")
	if err != nil {
		return 0, err
	}
	if !(factor > 0) || math.IsInf(factor, 0) {
		return 0, fmt.Errorf("%s: llama.rope.scaling.factor: expected a positive factor, found %v", f.Path, factor)
	}
	return factor, nil
}

// tensorsPerBlock is the number of tensors of one block (spec/format.md §7).
const tensorsPerBlock = 9

// checkCounts bounds the config's counts by what the file holds, before
// anything is built from them: a corrupt or hostile block_count of 2^31-1
// would have the loader list 2^31 tensor names before it finds one missing,
// and a context_length of 2^31 would allocate a RoPE table of terabytes. The
// sizes (vocab_size, dim, ffn_dim, heads) are bounded by the tensors' shapes,
// which checkTensors compares with what the file holds, and the file's tensor
// count by its size (gguf.Parse). A file with a tokenizer must have a token
// per row of the embedding.
func checkCounts(f *gguf.File, c Config) error {
	if tokens, ok := f.Metadata["tokenizer.ggml.tokens"]; ok && tokens.Len() != c.VocabSize {
		return fmt.Errorf("%s: tokenizer.ggml.tokens has %d tokens but llama.vocab_size is %d", f.Path, tokens.Len(), c.VocabSize)
	}
	if blocks := len(f.Tensors) / tensorsPerBlock; c.NLayers > blocks {
		return fmt.Errorf("%s: llama.block_count: %d blocks need %d tensors each, but the file holds %d tensors in all",
			f.Path, c.NLayers, tensorsPerBlock, len(f.Tensors))
	}
	// The table holds cos and sin of head_dim/2 angles per position.
	if table := int64(c.ContextLength) * int64(c.HeadDim()) * 4; table > f.Size() {
		return fmt.Errorf("%s: llama.context_length: %d positions need a RoPE table of %d bytes, more than the whole file (%d bytes)",
			f.Path, c.ContextLength, table, f.Size())
	}
	return nil
}

// readWeights views the weights of a file that checkTensors accepted: the
// matrices in place, the norm weights copied as float32.
func readWeights(f *gguf.File, c Config, labels []string) (*Model, error) {
	m := &Model{Config: c, RopeScale: 1}
	var err error
	vector := func(name string) []float32 {
		var v []float32
		if err == nil {
			v, err = f.Float32s(name)
		}
		return v
	}
	matrix := func(name string) tensor.Matrix {
		t, _ := f.Tensor(name) // present: checkTensors said so
		shape := t.Shape()
		var mat tensor.Matrix
		if err == nil {
			mat, err = tensor.FromGGUF(shape[0], shape[1], t.Type, f.TensorData(t))
		}
		return mat
	}
	m.TokenEmbd = matrix("token_embd.weight")
	for l := 0; l < c.NLayers; l++ {
		p := "blk." + strconv.Itoa(l) + "."
		m.Layers = append(m.Layers, Layer{
			AttnNorm: vector(p + "attn_norm.weight"),
			Wq:       matrix(p + "attn_q.weight"),
			Wk:       matrix(p + "attn_k.weight"),
			Wv:       matrix(p + "attn_v.weight"),
			Wo:       matrix(p + "attn_output.weight"),
			FFNNorm:  vector(p + "ffn_norm.weight"),
			WGate:    matrix(p + "ffn_gate.weight"),
			WUp:      matrix(p + "ffn_up.weight"),
			WDown:    matrix(p + "ffn_down.weight"),
		})
	}
	m.OutputNorm = vector("output_norm.weight")
	if _, ok := f.Tensor(RopeFreqsTensor); ok {
		if m.RopeFreqs = vector(RopeFreqsTensor); err == nil {
			for i, v := range m.RopeFreqs {
				if !(v > 0) || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("tensor %s: frequency factor %d is %v; each must be positive and finite", RopeFreqsTensor, i, v)
				}
			}
		}
	}
	m.Output = m.TokenEmbd
	if !c.TieEmbeddings {
		m.Output = matrix("output.weight")
	}
	if labels != nil {
		head := matrix(ClassifierTensor)
		m.Labels, m.Classifier = labels, &head
	}
	return m, err
}

// Matrices lists every weight matrix with its spec name, in file order.
func (m *Model) Matrices() map[string]*tensor.Matrix {
	all := map[string]*tensor.Matrix{"token_embd.weight": &m.TokenEmbd}
	if !m.Config.TieEmbeddings {
		all["output.weight"] = &m.Output
	}
	if m.Classifier != nil {
		all[ClassifierTensor] = m.Classifier
	}
	for l := range m.Layers {
		w, p := &m.Layers[l], "blk."+strconv.Itoa(l)+"."
		all[p+"attn_q.weight"], all[p+"attn_k.weight"], all[p+"attn_v.weight"] = &w.Wq, &w.Wk, &w.Wv
		all[p+"attn_output.weight"], all[p+"ffn_gate.weight"] = &w.Wo, &w.WGate
		all[p+"ffn_up.weight"], all[p+"ffn_down.weight"] = &w.WUp, &w.WDown
	}
	return all
}

// WeightTypes are the tensor types a weight may be stored in (spec/format.md
// §5.3): the profile's F32, F16 and Q8_0, and the other ggml types that
// published models use.
var WeightTypes = []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_1, gguf.Q5_0,
	gguf.Q5_1, gguf.Q2_K, gguf.Q3_K, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K}

// IsWeightType reports whether t is one of WeightTypes.
func IsWeightType(t gguf.TensorType) bool { return slices.Contains(WeightTypes, t) }

func weightTypeList() string {
	names := make([]string, len(WeightTypes))
	for i, t := range WeightTypes {
		names[i] = t.String()
	}
	return strings.Join(names, ", ")
}

// checkTensors requires exactly the profile's tensors with the config's shapes,
// each in one of WeightTypes with rows of whole blocks and finite block
// scales, and a classifier's head when it has nClasses > 0 labels.
func checkTensors(f *gguf.File, c Config, nClasses int) error {
	if err := checkClassifier(f, c, nClasses); err != nil {
		return err
	}
	specs := c.Tensors()
	if nClasses > 0 {
		specs = append(specs, TensorSpec{ClassifierTensor, []int{nClasses, c.Dim}})
	}
	if _, ok := f.Tensor(RopeFreqsTensor); ok { // optional: LLaMA 3.1/3.2 files have it
		specs = append(specs, TensorSpec{RopeFreqsTensor, []int{c.HeadDim() / 2}})
	}
	want := map[string]bool{}
	for _, spec := range specs {
		want[spec.Name] = true
		t, ok := f.Tensor(spec.Name)
		if !ok {
			return fmt.Errorf("%s: missing tensor %s (expected shape %v)", f.Path, spec.Name, spec.Shape)
		}
		if shape := t.Shape(); !slices.Equal(shape, spec.Shape) {
			return fmt.Errorf("%s: tensor %s: expected shape %v, found %v", f.Path, spec.Name, spec.Shape, shape)
		}
		if !IsWeightType(t.Type) {
			return fmt.Errorf("%s: tensor %s: type %s is not a weight type (%s)", f.Path, spec.Name, t.Type, weightTypeList())
		}
		if len(spec.Shape) == 2 && spec.Shape[1]%t.Type.BlockValues() != 0 {
			return fmt.Errorf("%s: tensor %s: %s rows are whole blocks of %d values; a row of %d is not",
				f.Path, spec.Name, t.Type, t.Type.BlockValues(), spec.Shape[1])
		}
		if b := gguf.FirstNonFiniteScale(t.Type, f.TensorData(t)); b >= 0 {
			return fmt.Errorf("%s: tensor %s: block %d has a NaN or infinite scale", f.Path, spec.Name, b)
		}
	}
	for _, t := range f.Tensors {
		if !want[t.Name] {
			return fmt.Errorf("%s: unexpected tensor %s (not in the profile for this config)", f.Path, t.Name)
		}
	}
	return nil
}

// ropeTable holds cos and sin of m * theta_i for every position m and pair i,
// computed in float64: m*theta_i in float32 loses precision at large m.
func ropeTable(c Config, frequency func(i int) float64) (cos, sin []float32) {
	half := c.HeadDim() / 2
	cos = make([]float32, c.ContextLength*half)
	sin = make([]float32, c.ContextLength*half)
	for m := 0; m < c.ContextLength; m++ {
		for i := 0; i < half; i++ {
			angle := float64(m) * frequency(i)
			cos[m*half+i] = float32(math.Cos(angle))
			sin[m*half+i] = float32(math.Sin(angle))
		}
	}
	return cos, sin
}
