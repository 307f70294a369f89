package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"gollm/goengine/gguf"
)

// exampleTokenizer is the vocabulary of spec/tokenizer.md §2.4.
func exampleTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	var tokens [][]byte
	var special []bool
	for b := range 256 {
		tokens, special = append(tokens, []byte{byte(b)}), append(special, false)
	}
	for _, m := range []string{"he", "ll", "hell", "hello", " w", "or", " wor", "aa"} {
		tokens, special = append(tokens, []byte(m)), append(special, false)
	}
	for _, s := range []string{"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
		"<|reserved_special_token_0|>", "<|reserved_special_token_1|>", "<|reserved_special_token_2|>"} {
		tokens, special = append(tokens, []byte(s)), append(special, true)
	}
	return tiktokenTokenizer(t, tokens, special)
}

func TestSpecWorkedExample(t *testing.T) {
	tok := exampleTokenizer(t)
	if tok.EOT != 268 {
		t.Errorf("EOT = %d, want 268", tok.EOT)
	}
	checkEncodings(t, tok, []encodeCase{
		{"hello world", false, []int{259, 262, 108, 100}},
		{"aaa", false, []int{263, 97}},
		{"aaaa", false, []int{263, 263}},
		{"hi<|eot_id|>", false, []int{104, 105, 60, 124, 101, 111, 116, 95, 105, 100, 124, 62}},
		{"hi<|eot_id|>", true, []int{104, 105, 268}},
	})
}

func TestSplitExamples(t *testing.T) {
	for _, c := range []struct {
		text string
		want []string
	}{
		{"hello world", []string{"hello", " world"}},
		{"   hi", []string{"  ", " hi"}},
		{"\n\n  x", []string{"\n\n", " ", " x"}},
		{"'start", []string{"'s", "tart"}},
		{"12345", []string{"123", "45"}},
		{"Hi!\n", []string{"Hi", "!\n"}},
		{"x  ", []string{"x", "  "}},
	} {
		if d := diff(split(c.text), c.want); d != "" {
			t.Errorf("split(%q): %s", c.text, d)
		}
	}
}

func TestEncodeWithSpecialInvalidUTF8(t *testing.T) {
	if _, err := load(t).EncodeWithSpecial("<|eot_id|>\xc3"); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8: err = %v", err)
	}
}

// naiveBPE is tiktoken's BPE (spec/tokenizer.md §2.3 written out directly,
// after its whole-piece shortcut): merge the adjacent pair whose concatenation
// is the token of lowest id, the leftmost on a tie. The fuzz target checks
// that the merge rules give the same ids on gollm's vocabularies.
func naiveBPE(ranks map[string]int, piece string) []int {
	if id, ok := ranks[piece]; ok {
		return []int{id}
	}
	var parts []string
	for i := range len(piece) {
		parts = append(parts, piece[i:i+1])
	}
	for {
		best, at := -1, -1
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := ranks[parts[i]+parts[i+1]]; ok && (best < 0 || r < best) {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		parts = slices.Replace(parts, at, at+2, parts[at]+parts[at+1])
	}
	var ids []int
	for _, p := range parts {
		ids = append(ids, ranks[p])
	}
	return ids
}

// ranksOf is the tiktoken vocabulary of a gollm tokenizer: the bytes of each
// ordinary token -> its id.
func ranksOf(tok *Tokenizer) map[string]int {
	ranks := map[string]int{}
	for id := range tok.VocabSize() {
		if !tok.IsControl(id) {
			b, _ := tok.TokenBytes(id)
			ranks[string(b)] = id
		}
	}
	return ranks
}

func FuzzEncodeRoundTrip(f *testing.F) {
	c := loadCases(f)
	for _, cs := range c.Cases {
		f.Add(cs.Text)
	}
	f.Add("ok \xff")
	tokenizers := []*Tokenizer{load(f), trainedTokenizer(f, c)}
	ranks := []map[string]int{ranksOf(tokenizers[0]), ranksOf(tokenizers[1])}
	f.Fuzz(func(t *testing.T, s string) {
		for k, tok := range tokenizers {
			ids, err := tok.Encode(s)
			if !utf8.ValidString(s) {
				if err == nil {
					t.Fatalf("Encode(%q): no error for invalid UTF-8", s)
				}
				if _, err := tok.EncodeWithSpecial(s); err == nil {
					t.Fatalf("EncodeWithSpecial(%q): no error for invalid UTF-8", s)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Encode(%q): %v", s, err)
			}
			var want []int
			for _, p := range split(s) {
				if p == "" {
					t.Fatalf("split(%q) has an empty piece", s)
				}
				want = append(want, naiveBPE(ranks[k], p)...)
			}
			if d := diff(ids, want); d != "" {
				t.Fatalf("Encode(%q) differs from the naive BPE: %s", s, d)
			}
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() || tok.IsControl(id) {
					t.Fatalf("Encode(%q): id %d is not an ordinary token", s, id)
				}
			}
			if back, err := tok.Decode(ids); err != nil || back != s {
				t.Fatalf("Decode(Encode(%q)) = %q, %v", s, back, err)
			}
			ids, err = tok.EncodeWithSpecial(s)
			if err != nil {
				t.Fatalf("EncodeWithSpecial(%q): %v", s, err)
			}
			if back, err := tok.Decode(ids); err != nil || back != s {
				t.Fatalf("Decode(EncodeWithSpecial(%q)) = %q, %v", s, back, err)
			}
		}
	})
}

// FuzzEveryVocabulary encodes arbitrary text with every pre-tokenizer (the
// trained vocabulary under each), with a SentencePiece vocabulary, and with
// llama.cpp's test vocabularies when $GOLLM_LLAMA_VOCAB_DIR is set: valid UTF-8
// always encodes, to ids of the vocabulary, and decodes back to the text. The
// one exception is SentencePiece's: a ▁ (U+2581) in the text is how it writes
// a space, and decodes as one.
func FuzzEveryVocabulary(f *testing.F) {
	c := loadCases(f)
	for _, cs := range c.Cases[:100] {
		f.Add(cs.Text)
	}
	for _, text := range loadLlamaCases(f).Texts {
		f.Add(text)
	}
	tokenizers := fuzzTokenizers(f, c)
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // FuzzEncodeRoundTrip checks the error
		}
		for name, tok := range tokenizers {
			ids, err := tok.Encode(s)
			if err != nil {
				t.Fatalf("%s: Encode(%q): %v", name, s, err)
			}
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("%s: Encode(%q): id %d", name, s, id)
				}
			}
			back, err := tok.Decode(ids)
			if err != nil || back != s && !(tok.spm != nil && strings.Contains(s, spaceMark)) {
				t.Fatalf("%s: Decode(Encode(%q)) = %q, %v", name, s, back, err)
			}
			if _, err := tok.EncodeWithSpecial(s); err != nil {
				t.Fatalf("%s: EncodeWithSpecial(%q): %v", name, s, err)
			}
		}
	})
}

// fuzzTokenizers are the vocabularies of FuzzEveryVocabulary, by name.
func fuzzTokenizers(t testing.TB, c *tiktokenCases) map[string]*Tokenizer {
	tokenizers := map[string]*Tokenizer{}
	tokens, special := trainedVocabulary(t, c)
	for pre := range preTokenizers {
		file := tiktokenGGUF(t, tokens, special)
		file.Metadata["tokenizer.ggml.pre"] = gguf.Value{Type: gguf.STRING, Str: pre}
		tok, err := FromGGUF(file)
		if err != nil {
			t.Fatal(err)
		}
		tokenizers["trained/"+pre] = tok
	}
	// SentencePiece: the trained tokens that are text, spaces written ▁,
	// scored by their rank.
	var pieces []string
	var scores []float32
	seen := map[string]bool{}
	for id, b := range tokens {
		piece := strings.ReplaceAll(string(b), " ", spaceMark)
		if special[id] || !utf8.Valid(b) || seen[piece] || strings.HasPrefix(piece, "<0x") {
			continue
		}
		seen[piece] = true
		pieces, scores = append(pieces, piece), append(scores, -float32(id))
	}
	tok, err := FromGGUF(spmVocabulary(t, pieces, scores))
	if err != nil {
		t.Fatal(err)
	}
	tokenizers["trained/sentencepiece"] = tok
	if dir := os.Getenv("GOLLM_LLAMA_VOCAB_DIR"); dir != "" {
		for _, name := range llamaVocabs {
			f, err := gguf.Open(filepath.Join(dir, "ggml-vocab-"+name+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := FromGGUF(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			tokenizers[name] = tok
		}
	}
	return tokenizers
}

// benchText is about 4 MB: the cases' texts, one a line, repeated. (Python
// gets the same text with "\n".join(texts) * k.)
func benchText(b *testing.B) string {
	var texts []string
	for _, c := range loadCases(b).Cases {
		texts = append(texts, c.Text)
	}
	one := strings.Join(texts, "\n")
	return strings.Repeat(one, (4<<20)/len(one)+1)
}

func BenchmarkEncode(b *testing.B) {
	text := benchText(b)
	for _, v := range []struct {
		name string
		tok  *Tokenizer
	}{{"goldens", load(b)}, {"trained", trainedTokenizer(b, loadCases(b))}} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ResetTimer() // set-up is not timed
			for range b.N {
				if _, err := v.tok.Encode(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeFile encodes the text file $GOLLM_BENCH_TEXT with the vocabulary
// of $GOLLM_BENCH_VOCAB (a GGUF file); scripts/bench_tokenizer.py sets both and
// compares the result with tiktoken on the same text and vocabulary.
func BenchmarkEncodeFile(b *testing.B) {
	textPath, vocabPath := os.Getenv("GOLLM_BENCH_TEXT"), os.Getenv("GOLLM_BENCH_VOCAB")
	if textPath == "" || vocabPath == "" {
		b.Skip("set GOLLM_BENCH_TEXT and GOLLM_BENCH_VOCAB (scripts/bench_tokenizer.py does)")
	}
	data, err := os.ReadFile(textPath)
	if err != nil {
		b.Fatal(err)
	}
	f, err := gguf.Open(vocabPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tok, err := FromGGUF(f)
	if err != nil {
		b.Fatal(err)
	}
	text := string(data)
	b.SetBytes(int64(len(text)))
	b.ResetTimer() // set-up is not timed
	for range b.N {
		if _, err := tok.Encode(text); err != nil {
			b.Fatal(err)
		}
	}
}

// encodeCase is a text, whether its special-token text is parsed
// (EncodeWithSpecial) or ordinary (Encode), and the ids it must give.
type encodeCase struct {
	text        string
	withSpecial bool
	want        []int
}

// checkEncodings encodes each case, compares the ids, and decodes them back
// to the text.
func checkEncodings(t *testing.T, tok *Tokenizer, cases []encodeCase) {
	t.Helper()
	for _, c := range cases {
		encode := tok.Encode
		if c.withSpecial {
			encode = tok.EncodeWithSpecial
		}
		got, err := encode(c.text)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(got, c.want); d != "" {
			t.Errorf("encode(%q, special %v): %s", c.text, c.withSpecial, d)
		}
		if back, _ := tok.Decode(got); back != c.text {
			t.Errorf("Decode(encode(%q)) = %q", c.text, back)
		}
	}
}
