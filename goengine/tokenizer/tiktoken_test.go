package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
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
	v := c.TrainedVocabulary
	n := len(v.RanksBase64) + len(v.SpecialTokens)
	tokens, special := make([][]byte, n), make([]bool, n)
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
	tok, err := newTokenizer(tokens, special)
	if err != nil {
		t.Fatal(err)
	}
	return tok
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
