package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"

	"gollm/goengine/gguf"
)

// tiktokenCases is testdata/tiktoken_cases.json, written by testdata/make_cases.py
// from tiktoken (ids) and the regex module (pieces).
type tiktokenCases struct {
	TrainedVocabulary struct {
		RanksBase64   []string       `json:"ranks_base64"`
		SpecialTokens map[string]int `json:"special_tokens"`
	} `json:"trained_vocabulary"`
	Cases []struct {
		Text       string   `json:"text"`
		Pieces     []string `json:"pieces"`
		IDs        []int    `json:"ids"`
		TrainedIDs []int    `json:"trained_ids"`
	} `json:"cases"`
	SpecialCases []struct {
		Text       string `json:"text"`
		IDs        []int  `json:"ids"`
		TrainedIDs []int  `json:"trained_ids"`
	} `json:"special_cases"`
}

func loadCases(t testing.TB) *tiktokenCases {
	t.Helper()
	data, err := os.ReadFile("testdata/tiktoken_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c tiktokenCases
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("testdata/tiktoken_cases.json: %v", err)
	}
	if len(c.Cases) == 0 || len(c.SpecialCases) == 0 {
		t.Fatal("testdata/tiktoken_cases.json has no cases")
	}
	return &c
}

// trainedTokenizer builds the second vocabulary of the cases file, whose merges
// cover multi-byte characters, digits and spaces.
func trainedTokenizer(t testing.TB, c *tiktokenCases) *Tokenizer {
	t.Helper()
	tokens, special := trainedVocabulary(t, c)
	return tiktokenTokenizer(t, tokens, special)
}

// trainedVocabulary is the trained vocabulary of the cases file: tokens[id]
// the bytes of each token, special[id] true for the special tokens.
func trainedVocabulary(t testing.TB, c *tiktokenCases) (tokens [][]byte, special []bool) {
	t.Helper()
	v := c.TrainedVocabulary
	n := len(v.RanksBase64) + len(v.SpecialTokens)
	tokens, special = make([][]byte, n), make([]bool, n)
	for id, s := range v.RanksBase64 {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("trained rank %d: %v", id, err)
		}
		tokens[id] = b
	}
	for text, id := range v.SpecialTokens {
		tokens[id], special[id] = []byte(text), true
	}
	return tokens, special
}

// tiktokenTokenizer loads a tiktoken vocabulary (tokens[id] the bytes of
// ordinary token id, its rank; special[id] marks the special tokens) through
// FromGGUF.
func tiktokenTokenizer(t testing.TB, tokens [][]byte, special []bool) *Tokenizer {
	t.Helper()
	tok, err := FromGGUF(tiktokenGGUF(t, tokens, special))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tiktokenGGUF writes a tiktoken vocabulary as gollm's GGUF export does
// (spec/tokenizer.md §4): token strings in byte-to-unicode form, and for each
// merged token the merge rule that BPE with the lower ranks ends in.
func tiktokenGGUF(t testing.TB, tokens [][]byte, special []bool) *gguf.File {
	t.Helper()
	ranks := map[string]int{}
	texts := make([]string, len(tokens))
	types := make([]int64, len(tokens))
	var merges []string
	bos, eos := uint64(0), uint64(0)
	for id, b := range tokens {
		if special[id] {
			texts[id], types[id] = string(b), 3
			switch string(b) {
			case "<|begin_of_text|>":
				bos = uint64(id)
			case "<|end_of_text|>":
				eos = uint64(id)
			}
			continue
		}
		texts[id], types[id] = bytesToUnicode(b), 1
		if len(b) > 1 {
			parts := lowerRankParts(ranks, b)
			if len(parts) != 2 {
				t.Fatalf("token %d %q is not reachable by BPE from its bytes: %q", id, b, parts)
			}
			merges = append(merges, bytesToUnicode(parts[0])+" "+bytesToUnicode(parts[1]))
		}
		ranks[string(b)] = id
	}
	return &gguf.File{Path: "tiktoken vocabulary", Metadata: map[string]gguf.Value{
		"tokenizer.ggml.model":        {Type: gguf.STRING, Str: "gpt2"},
		"tokenizer.ggml.pre":          {Type: gguf.STRING, Str: "llama-bpe"},
		"tokenizer.ggml.tokens":       {Type: gguf.ARRAY, ElemType: gguf.STRING, Strs: texts},
		"tokenizer.ggml.token_type":   {Type: gguf.ARRAY, ElemType: gguf.INT32, Ints: types},
		"tokenizer.ggml.merges":       {Type: gguf.ARRAY, ElemType: gguf.STRING, Strs: merges},
		"tokenizer.ggml.bos_token_id": {Type: gguf.UINT32, Uint: bos},
		"tokenizer.ggml.eos_token_id": {Type: gguf.UINT32, Uint: eos},
	}}
}

// lowerRankParts runs tiktoken's BPE on b with the ranks learned so far.
func lowerRankParts(ranks map[string]int, b []byte) [][]byte {
	var parts [][]byte
	for i := range b {
		parts = append(parts, b[i:i+1])
	}
	for {
		best, at := -1, -1
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := ranks[string(parts[i])+string(parts[i+1])]; ok && (best < 0 || r < best) {
				best, at = r, i
			}
		}
		if at < 0 {
			return parts
		}
		parts = slices.Replace(parts, at, at+2, append(slices.Clip(parts[at]), parts[at+1]...))
	}
}

// bytesToUnicode writes bytes in GPT-2's byte-to-unicode form.
func bytesToUnicode(b []byte) string {
	var s []rune
	for _, c := range b {
		for r, back := range byteOfRune {
			if back == int16(c) {
				s = append(s, rune(r))
				break
			}
		}
	}
	return string(s)
}

// diff describes where got and want differ, or returns "" if they are equal.
func diff[T comparable](got, want []T) string {
	if slices.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("first difference at index %d\n got  %#v\n want %#v", i, got, want)
}

func TestSplitMatchesRegex(t *testing.T) {
	for _, c := range loadCases(t).Cases {
		if d := diff(split(c.Text), c.Pieces); d != "" {
			t.Errorf("split(%q): %s", c.Text, d)
		}
	}
}

func TestEncodeMatchesTiktoken(t *testing.T) {
	c := loadCases(t)
	for _, v := range []struct {
		name string
		tok  *Tokenizer
		ids  func(i int) []int
	}{
		{"goldens/gqa.gguf", load(t), func(i int) []int { return c.Cases[i].IDs }},
		{"trained", trainedTokenizer(t, c), func(i int) []int { return c.Cases[i].TrainedIDs }},
	} {
		for i, cs := range c.Cases {
			got, err := v.tok.Encode(cs.Text)
			if err != nil {
				t.Fatalf("%s: Encode(%q): %v", v.name, cs.Text, err)
			}
			if d := diff(got, v.ids(i)); d != "" {
				t.Errorf("%s: Encode(%q): %s", v.name, cs.Text, d)
			}
			if back, err := v.tok.Decode(got); err != nil || back != cs.Text {
				t.Errorf("%s: Decode(Encode(%q)) = %q, %v", v.name, cs.Text, back, err)
			}
		}
	}
}

func TestEncodeWithSpecialMatchesTiktoken(t *testing.T) {
	c := loadCases(t)
	golden, trained := load(t), trainedTokenizer(t, c)
	for _, cs := range c.SpecialCases {
		for _, v := range []struct {
			name string
			tok  *Tokenizer
			want []int
		}{{"goldens/gqa.gguf", golden, cs.IDs}, {"trained", trained, cs.TrainedIDs}} {
			got, err := v.tok.EncodeWithSpecial(cs.Text)
			if err != nil {
				t.Fatalf("%s: EncodeWithSpecial(%q): %v", v.name, cs.Text, err)
			}
			if d := diff(got, v.want); d != "" {
				t.Errorf("%s: EncodeWithSpecial(%q): %s", v.name, cs.Text, d)
			}
			if back, err := v.tok.Decode(got); err != nil || back != cs.Text {
				t.Errorf("%s: Decode(EncodeWithSpecial(%q)) = %q, %v", v.name, cs.Text, back, err)
			}
		}
	}
}
