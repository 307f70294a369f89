package tokenizer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// llamaVocabs are the vocabularies of llama.cpp's tokenizer tests that
// goengine reads: models/ggml-vocab-NAME.gguf, vocabulary-only files.
var llamaVocabs = []string{"llama-spm", "llama-bpe", "gpt-2", "deepseek-llm", "deepseek-coder", "phi-3"}

// vocabDir is $GOLLM_LLAMA_VOCAB_DIR, llama.cpp's models/ directory, or skips the test.
func vocabDir(t *testing.T) string {
	dir := os.Getenv("GOLLM_LLAMA_VOCAB_DIR")
	if dir == "" {
		t.Skip("set GOLLM_LLAMA_VOCAB_DIR to llama.cpp's models/ directory (ggml-vocab-NAME.gguf with .inp and .out) to run llama.cpp's tokenizer tests")
	}
	return dir
}

// TestVocabLlamaCpp runs llama.cpp's tests/test-tokenizer-0 on goengine: for
// each vocabulary, every text of ggml-vocab-NAME.gguf.inp must encode to
// exactly the ids on the same line of .out (llama.cpp's tokenize without BOS
// and without special-token parsing, which is Encode), and decode back to the
// text.
func TestVocabLlamaCpp(t *testing.T) {
	dir := vocabDir(t)
	for _, name := range llamaVocabs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "ggml-vocab-"+name+".gguf")
			tok, _ := loadFile(t, path)
			texts, want := readVocabTests(t, path)
			passed := 0
			for i, text := range texts {
				got, err := tok.Encode(text)
				if err != nil {
					t.Errorf("case %d %q: %v", i, text, err)
					continue
				}
				if d := diff(got, want[i]); d != "" {
					t.Errorf("case %d %q: %s", i, text, d)
					continue
				}
				passed++
				if back, err := tok.Decode(got); err != nil || back != text {
					t.Errorf("case %d: Decode gives %q, %v; want %q", i, back, err, text)
				}
			}
			t.Logf("%s: %d of %d cases give llama.cpp's ids", name, passed, len(texts))
		})
	}
}

// readVocabTests reads the cases of llama.cpp's test-tokenizer-0: the texts
// of path.inp, separated by "\n__ggml_vocab_test__\n", and the ids on the
// lines of path.out.
func readVocabTests(t *testing.T, path string) (texts []string, ids [][]int) {
	t.Helper()
	inp, err := os.ReadFile(path + ".inp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(path + ".out")
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	for rest := string(inp); rest != ""; {
		text, after, found := strings.Cut(rest, sep)
		texts = append(texts, text)
		if !found {
			break
		}
		rest = after
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d texts in .inp, %d lines in .out", path, len(texts), len(lines))
	}
	for i, line := range lines {
		var lineIDs []int
		for _, field := range strings.Fields(line) {
			id, err := strconv.Atoi(field)
			if err != nil {
				t.Fatalf("%s.out line %d: %v", path, i+1, err)
			}
			lineIDs = append(lineIDs, id)
		}
		ids = append(ids, lineIDs)
	}
	return texts, ids
}
