package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gollm/goengine/gguf"
	"gollm/goengine/model"
)

const goldenModel = "../../../goldens/gqa.gguf"

func runCLI(args ...string) (code int, stdout, stderr string) {
	return runCLIWithInput("", args...)
}

func runCLIWithInput(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestInfo(t *testing.T) {
	code, out, errOut := runCLI("info", "--model", goldenModel)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"n_kv_heads      2", "parameters      139,584", "blk.1.ffn_down.weight", "F32", "[64 192]", "320 tokens (8 special)"} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
}

func TestGenerateStreamsTextAndReportsSpeed(t *testing.T) {
	args := []string{"generate", "--model", goldenModel, "--prompt", "the robot", "--max-tokens", "10", "--seed", "7"}
	code, out, errOut := runCLI(args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "the robot") || len(out) <= len("the robot\n") {
		t.Errorf("stdout %q should be the prompt and its continuation", out)
	}
	if !strings.Contains(errOut, "tokens/s") {
		t.Errorf("stderr %q should report speed", errOut)
	}
	_, again, _ := runCLI(args...)
	if again != out {
		t.Errorf("same seed, different text: %q vs %q", out, again)
	}
}

// TestGenerateWithoutSeedPrintsOne: each run without --seed draws its own
// seed and prints it, and passing that seed repeats the run's text.
func TestGenerateWithoutSeedPrintsOne(t *testing.T) {
	args := []string{"generate", "--model", goldenModel, "--prompt", "the robot", "--max-tokens", "12", "--temperature", "1"}
	seedOf := func(stderr string) string {
		for _, line := range strings.Split(stderr, "\n") {
			var seed, again string
			if n, _ := fmt.Sscanf(line, "seed: %s (pass --seed %s to repeat)", &seed, &again); n == 2 && again == seed {
				return seed
			}
		}
		return ""
	}
	code, first, errOut := runCLI(args...)
	seed := seedOf(errOut)
	if code != 0 || seed == "" {
		t.Fatalf("exit %d, stderr %q: want a line \"seed: N (pass --seed N to repeat)\"", code, errOut)
	}
	if _, _, errOut := runCLI(args...); seedOf(errOut) == seed {
		t.Errorf("two runs without --seed both drew seed %s", seed)
	}
	code, again, errOut := runCLI(append(args, "--seed", seed)...)
	if code != 0 || again != first {
		t.Errorf("--seed %s: exit %d, text %q; the unseeded run wrote %q", seed, code, again, first)
	}
	if strings.Contains(errOut, "seed:") {
		t.Errorf("with --seed, stderr %q should not print a seed", errOut)
	}
	if _, _, errOut := runCLI("generate", "--model", goldenModel, "--max-tokens", "2", "--temperature", "0"); strings.Contains(errOut, "seed:") {
		t.Errorf("greedy, stderr %q should not print a seed: it changes nothing", errOut)
	}
}

// TestPromptFile: --prompt-file reads the prompt from a file or stdin, less
// one final newline, exactly as --prompt gives it; the two together, a file
// that is not UTF-8 and a missing file are errors.
func TestPromptFile(t *testing.T) {
	dir := t.TempDir()
	file, crlf, bad := filepath.Join(dir, "prompt.txt"), filepath.Join(dir, "crlf.txt"), filepath.Join(dir, "bad.txt")
	os.WriteFile(file, []byte("the robot\n"), 0o644)
	os.WriteFile(crlf, []byte("the robot\r\n"), 0o644)
	os.WriteFile(bad, []byte("the r\xf6bot\n"), 0o644)
	generate := []string{"generate", "--model", goldenModel, "--max-tokens", "8", "--seed", "3"}
	_, want, _ := runCLI(append(generate, "--prompt", "the robot")...)
	for _, c := range []struct{ stdin, file string }{{"", file}, {"", crlf}, {"the robot\n", "-"}, {"the robot", "-"}} {
		if code, out, errOut := runCLIWithInput(c.stdin, append(generate, "--prompt-file", c.file)...); code != 0 || out != want {
			t.Errorf("--prompt-file %s (stdin %q): exit %d, stdout %q, stderr %q; --prompt gives %q", c.file, c.stdin, code, out, errOut, want)
		}
	}
	_, ids, _ := runCLI("tokenize", "--model", goldenModel, "the robot")
	if code, out, errOut := runCLI("tokenize", "--model", goldenModel, "--prompt-file", file); code != 0 || out != ids {
		t.Errorf("tokenize --prompt-file: exit %d, stdout %q, stderr %q; the argument gives %q", code, out, errOut, ids)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{append(generate, "--prompt", "x", "--prompt-file", file), 2, "give --prompt or --prompt-file, not both"},
		{append(generate, "--prompt-file", bad), 2, "--prompt-file " + bad + ": the text is not valid UTF-8 (byte 5 is 0xf6)"},
		{append(generate, "--prompt-file", filepath.Join(dir, "missing.txt")), 1, "missing.txt: no such file"},
		{append(generate, "--prompt-file", ""), 2, "--prompt-file needs a file name"},
		{[]string{"tokenize", "--model", goldenModel, "--prompt-file", file, "hi"}, 2, "as an argument or --prompt-file, not both"},
		{[]string{"tokenize", "--model", goldenModel, "--prompt-file", bad}, 2, "not valid UTF-8 (byte 5 is 0xf6)"},
	} {
		code, _, errOut := runCLI(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and one line with %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

func TestGenerateStopsAtTheContext(t *testing.T) {
	code, _, errOut := runCLI("generate", "--model", goldenModel, "--prompt", "abc", "--max-tokens", "500", "--temperature", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "reached the context length (64 tokens)") && !strings.Contains(errOut, "end of text") {
		t.Errorf("stderr %q should say why generation stopped", errOut)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.gguf")
	os.WriteFile(junk, []byte("not a model at all, just some text"), 0o644)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "usage"},
		{[]string{"fly"}, 2, `unknown command "fly"`},
		{[]string{"generate", "--prompt", "x"}, 2, "--model is required"},
		{[]string{"generate", "--model", filepath.Join(dir, "missing.gguf")}, 1, "missing.gguf"},
		{[]string{"generate", "--model", junk}, 1, "junk.gguf"},
		{[]string{"generate", "--model", goldenModel, "--temperature", "-1"}, 2, "temperature"},
		{[]string{"generate", "--model", goldenModel, "--top-p", "2"}, 2, "top_p"},
		{[]string{"generate", "--model", goldenModel, "--top-k", "-3"}, 2, "top_k"},
		{[]string{"generate", "--model", goldenModel, "--max-tokens", "0"}, 2, "--max-tokens must be positive"},
		{[]string{"generate", "--model", goldenModel, "--temperature", "warm"}, 2, "invalid value"},
		{[]string{"generate", "--model", goldenModel, "--prompt", "bad \xff utf8"}, 2, "not valid UTF-8"},
		{[]string{"generate", "--model", goldenModel, "--prompt", strings.Repeat("long ", 20)}, 1, "context is 64"},
		{[]string{"info", "--model", goldenModel, "extra"}, 2, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("goengine %q: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

func TestTokenize(t *testing.T) {
	code, out, errOut := runCLI("tokenize", "--model", goldenModel, "--bos", "hi")
	if code != 0 || out != "312 104 105\n" {
		t.Errorf("tokenize: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runCLI("tokenize", "hi", "--model", goldenModel)
	if code != 0 || out != "104 105\n" {
		t.Errorf("tokenize with the text first: exit %d, stdout %q", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tokenize", "--model", goldenModel}, "expected one text argument, found 0"},
		{[]string{"tokenize", "--model", goldenModel, "a", "b"}, "expected one text argument, found 2"},
		{[]string{"tokenize", "--model", goldenModel, "\xff"}, "UTF-8"},
	} {
		if code, _, errOut := runCLI(c.args...); code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want %q", c.args, code, errOut, c.want)
		}
	}
}

func TestLogits(t *testing.T) {
	code, out, errOut := runCLI("logits", "--model", goldenModel, "--tokens", "312 5 80")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows [][]float32
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 3 || len(rows[0]) != 320 {
		t.Fatalf("logits output: %v, %d rows", err, len(rows))
	}
	for _, c := range []struct{ tokens, want string }{{"", "at least one"}, {"1 x", `"x" is not a token id`}, {"999", "outside the vocabulary"}} {
		if code, _, errOut := runCLI("logits", "--model", goldenModel, "--tokens", c.tokens); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("--tokens %q: exit %d, stderr %q", c.tokens, code, errOut)
		}
	}
}

func TestBench(t *testing.T) {
	code, out, errOut := runCLI("bench", "--model", goldenModel, "--prompt-tokens", "8", "--gen-tokens", "8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"prefill", "decode", "tokens/s", "memory bandwidth (probe)", "decode vs bandwidth ceiling", "peak RSS", "139,584"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "tiny.json") // as python -m jaxmodel.config --json writes it
	tiny := `{"vocab_size": 64, "dim": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "ffn_dim": 64, "context_length": 32, "rope_theta": 10000.0, "norm_eps": 1e-05, "tie_embeddings": true}`
	os.WriteFile(config, []byte(tiny+"\n"), 0o644)
	if code, out, errOut := runCLI("bench", "--config", config, "--prompt-tokens", "4", "--gen-tokens", "4"); code != 0 || !strings.Contains(out, "random weights") {
		t.Errorf("bench --config: exit %d, %s %s", code, out, errOut)
	}
	if code, out, errOut := runCLIWithInput(tiny, "bench", "--config", "-", "--prompt-tokens", "4", "--gen-tokens", "4"); code != 0 || !strings.Contains(out, "random weights") {
		t.Errorf("bench --config -: exit %d, %s %s", code, out, errOut)
	}
	profile := filepath.Join(dir, "cpu")
	code, out, errOut = runCLI("bench", "--config", config, "--dtype", "q8_0", "--prompt-tokens", "4", "--gen-tokens", "4", "--cpuprofile", profile)
	if code != 0 || !strings.Contains(out, "random weights, q8_0") || !strings.Contains(out, "8 Q8_0 matrices") {
		t.Errorf("bench --dtype q8_0: exit %d, %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI("bench", "--config", config, "--prompt-tokens", "4", "--gen-tokens", "3", "--sessions", "2")
	if code != 0 || !strings.Contains(out, "(6 tokens), 2 sessions batched: 3 steps") {
		t.Errorf("bench --sessions 2: exit %d, %s %s", code, out, errOut)
	}
	for _, phase := range []string{"prefill", "decode"} {
		if info, err := os.Stat(profile + "." + phase); err != nil || info.Size() == 0 {
			t.Errorf("--cpuprofile: %s profile missing: %v", phase, err)
		}
	}
	odd := filepath.Join(dir, "odd.json")
	os.WriteFile(odd, []byte(strings.Replace(tiny, `"dim": 32`, `"dim": 48`, 1)), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(strings.Replace(tiny, `"dim"`, `"dropout": 0.1, "dim"`, 1)), 0o644)
	missing := filepath.Join(dir, "missing.json")
	os.WriteFile(missing, []byte(strings.Replace(tiny, `"ffn_dim": 64, `, "", 1)), 0o644)
	typed := filepath.Join(dir, "typed.json")
	os.WriteFile(typed, []byte(strings.Replace(tiny, `"tie_embeddings": true`, `"tie_embeddings": 1`, 1)), 0o644)
	yamlFile := filepath.Join(dir, "tiny.yaml")
	os.WriteFile(yamlFile, []byte("model:\n  vocab_size: 64\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "exactly one of --model and --config"},
		{[]string{"bench", "--model", goldenModel, "--config", config}, "exactly one of"},
		{[]string{"bench", "--model", goldenModel, "--prompt-tokens", "60", "--gen-tokens", "10"}, "--prompt-tokens + --gen-tokens = 70 exceed the context length 64"},
		{[]string{"bench", "--model", goldenModel, "--prompt-tokens", "64"}, "--prompt-tokens 64 leaves no room in the context length 64"},
		{[]string{"bench", "--model", goldenModel, "--gen-tokens", "100"}, "--gen-tokens 100 leaves no room in the context length 64"},
		{[]string{"bench", "--config", bad}, "unknown key model.dropout"},
		{[]string{"bench", "--config", missing}, "missing key model.ffn_dim"},
		{[]string{"bench", "--config", typed}, "model.tie_embeddings: 1 is not a valid value"},
		{[]string{"bench", "--config", yamlFile}, "expected the JSON of python -m jaxmodel.config --json"},
		{[]string{"bench", "--config", config, "--dtype", "q4_0"}, `--dtype "q4_0": expected f32, f16 or q8_0`},
		{[]string{"bench", "--config", config, "--sessions", "0"}, "--sessions must be positive"},
		{[]string{"generate", "--model", goldenModel, "--threads", "0"}, "--threads must be at least 1, found 0"},
		{[]string{"serve", "--model", goldenModel, "--threads", "-2"}, "--threads must be at least 1, found -2"},
		{[]string{"bench", "--config", odd, "--dtype", "q8_0"}, "Q8_0 needs dim and ffn_dim divisible by 32"},
	} {
		if code, _, errOut := runCLI(c.args...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q", c.args, code, errOut)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestKernelsVariable runs the test binary again as the command, so that the
// level GOENGINE_KERNELS sets stays in that process: a value that names no
// level is one line and exit 2 before any command runs, and a valid one sets
// the kernels bench reports.
func TestKernelsVariable(t *testing.T) {
	if args, ok := os.LookupEnv("GOENGINE_TEST_COMMAND"); ok { // the child: be the command
		os.Exit(run(strings.Split(args, "\n"), os.Stdin, os.Stdout, os.Stderr))
	}
	command := func(kernels string, args ...string) (int, string, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKernelsVariable$")
		cmd.Env = append(os.Environ(), "GOENGINE_TEST_COMMAND="+strings.Join(args, "\n"), "GOENGINE_KERNELS="+kernels)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			if _, exited := err.(*exec.ExitError); !exited {
				t.Fatal(err)
			}
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}
	code, out, errOut := command("avx3", "info", "--model", goldenModel)
	want := `goengine: GOENGINE_KERNELS="avx3": expected avx512, avx2 or generic` + "\n"
	if code != 2 || out != "" || errOut != want {
		t.Errorf("GOENGINE_KERNELS=avx3: exit %d, stdout %q, stderr %q; want exit 2 and stderr %q", code, out, errOut, want)
	}
	code, out, errOut = command("generic", "bench", "--model", goldenModel, "--prompt-tokens", "4", "--gen-tokens", "4")
	if code != 0 || !strings.Contains(out, "(kernels: generic)") {
		t.Errorf("GOENGINE_KERNELS=generic bench: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestBenchFitsTheContext: a model whose context (256) is shorter than the
// default 512 + 128 tokens benchmarks with both shrunk, and an explicit
// length keeps its value while the other shrinks around it.
func TestBenchFitsTheContext(t *testing.T) {
	c := model.Config{VocabSize: 64, Dim: 32, NLayers: 1, NHeads: 2, NKVHeads: 1, FFNDim: 64,
		ContextLength: 256, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: true}
	data, err := model.RandomFile(c, gguf.F32, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "short.gguf")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		flags                      []string
		prompt, gen, note, errText string
	}{
		{nil, "(205 tokens)", "(51 tokens)", "205 prompt and 51 generated tokens, to fit the context length 256", ""},
		{[]string{"--prompt-tokens", "200"}, "(200 tokens)", "(56 tokens)", "200 prompt and 56 generated", ""},
		{[]string{"--gen-tokens", "16"}, "(240 tokens)", "(16 tokens)", "240 prompt and 16 generated", ""},
		{[]string{"--prompt-tokens", "100", "--gen-tokens", "20"}, "(100 tokens)", "(20 tokens)", "", ""},
		{[]string{"--prompt-tokens", "300"}, "", "", "", "--prompt-tokens 300 leaves no room in the context length 256"},
		{[]string{"--prompt-tokens", "200", "--gen-tokens", "100"}, "", "", "", "--prompt-tokens + --gen-tokens = 300 exceed the context length 256"},
	} {
		code, out, errOut := runCLI(append([]string{"bench", "--model", path}, want.flags...)...)
		if want.errText != "" {
			if code != 2 || !strings.Contains(errOut, want.errText) {
				t.Errorf("bench %q: exit %d, stderr %q; want exit 2 and %q", want.flags, code, errOut, want.errText)
			}
			continue
		}
		prefill, decode := lineOf(out, "prefill"), lineOf(out, "decode ")
		if code != 0 || !strings.Contains(prefill, want.prompt) || !strings.Contains(decode, want.gen) {
			t.Errorf("bench %q: exit %d, prefill %q, decode %q, stderr %q; want %s and %s", want.flags, code, prefill, decode, errOut, want.prompt, want.gen)
		}
		if want.note == "" && errOut != "" || !strings.Contains(errOut, want.note) {
			t.Errorf("bench %q: stderr %q, want %q", want.flags, errOut, want.note)
		}
	}
}

// lineOf is the first line of text that starts with prefix.
func lineOf(text, prefix string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}
