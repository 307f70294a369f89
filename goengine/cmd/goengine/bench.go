package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"gollm/goengine/engine"
	"gollm/goengine/gguf"
	"gollm/goengine/model"
	"gollm/goengine/tensor"
)

// bench measures load, prefill and decode speed against the machine's memory
// bandwidth: decode reads every weight once per token, so bandwidth / weight bytes
// is its ceiling.
func bench(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	modelPath := fs.String("model", "", "model file (.gguf)")
	configPath := fs.String("config", "", "or: a model config as JSON (- for stdin), from python -m jaxmodel.config --json configs/X.yaml, for a model with random weights")
	dtype := fs.String("dtype", "f32", "with --config: the weights' type, f32, f16 or q8_0")
	promptTokens := fs.Int("prompt-tokens", 512, "tokens to prefill (by default, fewer if the context is shorter)")
	genTokens := fs.Int("gen-tokens", 128, "tokens to decode after the prompt (by default, fewer if the context is shorter)")
	threads := threadsFlag(fs)
	sessions := fs.Int("sessions", 1, "decode this many sessions as one batch (as serve does with concurrent requests)")
	cpuProfile := fs.String("cpuprofile", "", "write CPU profiles of prefill and decode to FILE.prefill and FILE.decode (go tool pprof reads them)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*modelPath == "") == (*configPath == "") {
		return usagef("give exactly one of --model and --config")
	}
	if *promptTokens <= 0 || *genTokens <= 0 || *threads <= 0 || *sessions <= 0 {
		return usagef("--prompt-tokens, --gen-tokens, --threads and --sessions must be positive")
	}
	if err := setThreads(*threads); err != nil {
		return err
	}

	path, source, rssNote := *modelPath, *modelPath, ""
	if *configPath != "" {
		var err error
		if path, err = writeRandomModel(*configPath, *dtype, stdin); err != nil {
			return err
		}
		defer os.Remove(path)
		name := *configPath
		if name == "-" {
			name = "config on stdin"
		}
		source = fmt.Sprintf("%s (random weights, %s)", name, *dtype)
		// count what the engine holds, not the file's generation, where the OS can restart the count
		rssNote = rssNoteFor(resetPeakRSS())
	}
	start := time.Now()
	f, m, err := openModel(path)
	if err != nil {
		return err
	}
	defer f.Close()
	load := time.Since(start)
	c := m.Config
	prompts, gens, err := benchLengths(*promptTokens, *genTokens, given(fs, "prompt-tokens"), given(fs, "gen-tokens"), c.ContextLength)
	if err != nil {
		return err
	}
	if prompts != *promptTokens || gens != *genTokens {
		fmt.Fprintf(stderr, "bench: %d prompt and %d generated tokens, to fit the context length %d\n", prompts, gens, c.ContextLength)
		*promptTokens, *genTokens = prompts, gens
	}

	prompt := make([]int, *promptTokens)
	for i := range prompt {
		prompt[i] = (i * 7919) % c.VocabSize
	}
	if err := startProfile(*cpuProfile, "prefill"); err != nil {
		return err
	}
	start = time.Now()
	all := []*engine.Session{engine.NewSession(m)}
	if _, err := all[0].Prefill(prompt); err != nil {
		return err
	}
	prefill := time.Since(start)
	pprof.StopCPUProfile()
	for len(all) < *sessions { // the others' prompts are not timed
		s := engine.NewSession(m)
		if _, err := s.Prefill(prompt); err != nil {
			return err
		}
		all = append(all, s)
	}
	if err := startProfile(*cpuProfile, "decode"); err != nil {
		return err
	}
	batch, tokens := engine.NewBatch(m), make([]int, len(all))
	start = time.Now()
	for i := 0; i < *genTokens; i++ {
		for j := range tokens {
			tokens[j] = (i*104729 + j) % c.VocabSize
		}
		if _, err := batch.DecodeStep(all, tokens); err != nil {
			return err
		}
	}
	decode := time.Since(start)
	pprof.StopCPUProfile()

	weights := weightBytes(m)
	rss := peakRSS()                                       // before the probe's buffer
	bandwidth := tensor.MemoryBandwidth(*threads, 256<<20) // 256 MiB: eight times the L3
	perToken := decode.Seconds() / float64(*genTokens)
	effective := float64(weights) / perToken

	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	row := func(name, value string) { fmt.Fprintf(w, "%s\t%s\t\n", name, value) }
	row("model", source)
	row("parameters", commas(c.ParamCount()))
	row("weights", weightTypes(m))
	row("threads", fmt.Sprintf("%d (kernels: %s)", *threads, tensor.Kernels()))
	row("load", fmt.Sprintf("%.1f ms", 1000*load.Seconds()))
	row("prefill", fmt.Sprintf("%.1f tokens/s (%d tokens)", float64(*promptTokens)/prefill.Seconds(), *promptTokens))
	decodeRate := fmt.Sprintf("%.1f tokens/s (%d tokens)", float64(*genTokens**sessions)/decode.Seconds(), *genTokens**sessions)
	if *sessions > 1 {
		decodeRate += fmt.Sprintf(", %d sessions batched: %d steps", *sessions, *genTokens)
	}
	row("decode", decodeRate)
	row("weight bytes read per token", commas(weights))
	// Attention also reads the cache: keys and values of every earlier position.
	meanPos := int64(*promptTokens) + int64(*genTokens)/2
	row("KV cache bytes read per token", fmt.Sprintf("%s (mean, at position %d)", commas(meanPos*int64(2*c.NLayers*c.KVDim()*4)), meanPos))
	row("memory bandwidth (probe)", fmt.Sprintf("%.1f GB/s", bandwidth/1e9))
	row("decode reads weights at", fmt.Sprintf("%.1f GB/s", effective/1e9))
	row("decode vs bandwidth ceiling", fmt.Sprintf("%.0f%%", 100*effective/bandwidth))
	if rss > 0 {
		row("peak RSS", fmt.Sprintf("%s MiB%s", commas(rss>>20), rssNote))
	} else {
		row("peak RSS", "unknown on "+runtime.GOOS)
	}
	return w.Flush()
}

// benchLengths fits the prompt and generation lengths into a context of
// context tokens. An explicit flag is kept, and is an error if it does not fit;
// a default shrinks to the room left, or, when both are defaults, both shrink
// in their ratio (512:128, a fifth of the context for decoding).
func benchLengths(prompt, gen int, promptSet, genSet bool, context int) (int, int, error) {
	switch {
	case prompt+gen <= context:
		return prompt, gen, nil
	case promptSet && genSet:
		return 0, 0, usagef("--prompt-tokens + --gen-tokens = %d exceed the context length %d", prompt+gen, context)
	case promptSet && prompt >= context:
		return 0, 0, usagef("--prompt-tokens %d leaves no room in the context length %d for a generated token", prompt, context)
	case genSet && gen >= context:
		return 0, 0, usagef("--gen-tokens %d leaves no room in the context length %d for a prompt token", gen, context)
	case promptSet:
		return prompt, context - prompt, nil
	case genSet:
		return context - gen, gen, nil
	case context < 2:
		return 0, 0, fmt.Errorf("the context length %d has no room for a prompt token and a generated one", context)
	}
	gen = max(1, context*gen/(prompt+gen))
	return context - gen, gen, nil
}

// rssNoteFor says, after the random-weight file was made in this process,
// whether the peak RSS still counts its generation: only Linux can restart the
// count (resetPeakRSS).
func rssNoteFor(restarted bool) string {
	if restarted {
		return ""
	}
	return " (with the random weights' generation: " + runtime.GOOS + " cannot restart the count)"
}

// startProfile starts a CPU profile to path.phase, if path is set.
func startProfile(path, phase string) error {
	if path == "" {
		return nil
	}
	out, err := os.Create(path + "." + phase)
	if err != nil {
		return err
	}
	// The profile is flushed by StopCPUProfile; the file is closed at exit.
	return pprof.StartCPUProfile(out)
}

// openModel opens a model file for bench: the tokenizer is not needed, and a
// random-weight file has none.
func openModel(path string) (*gguf.File, *model.Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := model.Load(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, m, nil
}

// writeRandomModel writes a random-weight model of a config file to a temporary
// file, so that bench loads it as it would a trained one.
func writeRandomModel(configPath, dtype string, stdin io.Reader) (string, error) {
	types := map[string]gguf.TensorType{"f32": gguf.F32, "f16": gguf.F16, "q8_0": gguf.Q8_0}
	typ, ok := types[dtype]
	if !ok {
		return "", usagef("--dtype %q: expected f32, f16 or q8_0", dtype)
	}
	c, err := readConfig(configPath, stdin)
	if err != nil {
		return "", err
	}
	data, err := model.RandomFile(c, typ, 1)
	if err != nil {
		return "", fmt.Errorf("%s: %w", configPath, err)
	}
	out, err := os.CreateTemp("", "goengine-bench-*.gguf")
	if err != nil {
		return "", err
	}
	if _, err := out.Write(data); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), out.Close()
}

// weightBytes is what one decode step reads: every matrix, in its stored type,
// except the embedding table, of which it reads one row (all of it when the
// head is tied to it).
func weightBytes(m *model.Model) int64 {
	var n int64
	for name, w := range m.Matrices() {
		if name == "token_embd.weight" && !m.Config.TieEmbeddings {
			n += w.ByteSize() / int64(w.Rows)
			continue
		}
		n += w.ByteSize()
	}
	n += 4 * int64(len(m.OutputNorm))
	for _, l := range m.Layers {
		n += 4 * int64(len(l.AttnNorm)+len(l.FFNNorm))
	}
	return n
}

// weightTypes counts the matrices of each stored type: "85 Q8_0".
func weightTypes(m *model.Model) string {
	counts := map[string]int{}
	for _, w := range m.Matrices() {
		counts[w.Type.String()]++
	}
	var parts []string
	for _, typ := range []string{"F32", "F16", "Q8_0"} {
		if counts[typ] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s matrices", counts[typ], typ))
		}
	}
	return strings.Join(parts, ", ")
}

// readConfig reads a model config as JSON, "-" for stdin. goengine reads no
// YAML: the one config loader, jaxmodel/config.py, checks a config file and
// prints its model: section (python -m jaxmodel.config --json configs/X.yaml).
// Each field of spec/model.md §2 must be there once with its JSON type, and
// no other, as in a model file's metadata.
func readConfig(path string, stdin io.Reader) (model.Config, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return model.Config{}, err
	}
	var values map[string]json.RawMessage
	if err := json.Unmarshal(data, &values); err != nil {
		return model.Config{}, fmt.Errorf("%s: expected the JSON of python -m jaxmodel.config --json CONFIG.yaml: %w", path, err)
	}
	var c model.Config
	fields := []struct {
		key string
		dst any
	}{
		{"vocab_size", &c.VocabSize}, {"dim", &c.Dim}, {"n_layers", &c.NLayers}, {"n_heads", &c.NHeads},
		{"n_kv_heads", &c.NKVHeads}, {"ffn_dim", &c.FFNDim}, {"context_length", &c.ContextLength},
		{"rope_theta", &c.RopeTheta}, {"norm_eps", &c.NormEps}, {"tie_embeddings", &c.TieEmbeddings},
	}
	for _, f := range fields {
		text, ok := values[f.key]
		if !ok {
			return model.Config{}, fmt.Errorf("%s: missing key model.%s", path, f.key)
		}
		if string(text) == "null" || json.Unmarshal(text, f.dst) != nil {
			return model.Config{}, fmt.Errorf("%s: model.%s: %s is not a valid value", path, f.key, text)
		}
		delete(values, f.key)
	}
	if len(values) > 0 {
		unknown := make([]string, 0, len(values))
		for key := range values {
			unknown = append(unknown, key)
		}
		sort.Strings(unknown)
		return model.Config{}, fmt.Errorf("%s: unknown key model.%s", path, unknown[0])
	}
	if err := c.Validate(); err != nil {
		return model.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
