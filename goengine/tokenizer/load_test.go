package tokenizer

import (
	"fmt"
	"strings"
	"testing"

	"gollm/goengine/gguf"
)

// byteVocabulary is a byte-level vocabulary with the 256 bytes, then the
// given tokens (texts in byte-to-unicode form when normal; types from
// tokenizer.ggml.token_type) and merges, as a GGUF file with pre-tokenizer pre.
func byteVocabulary(pre string, extra []string, types []int64, merges []string) *gguf.File {
	var texts []string
	var allTypes []int64
	for b := range 256 {
		texts, allTypes = append(texts, bytesToUnicode([]byte{byte(b)})), append(allTypes, 1)
	}
	texts, allTypes = append(texts, extra...), append(allTypes, types...)
	return &gguf.File{Path: "test.gguf", Metadata: map[string]gguf.Value{
		"tokenizer.ggml.model":      {Type: gguf.STRING, Str: "gpt2"},
		"tokenizer.ggml.pre":        {Type: gguf.STRING, Str: pre},
		"tokenizer.ggml.tokens":     {Type: gguf.ARRAY, ElemType: gguf.STRING, Strs: texts},
		"tokenizer.ggml.token_type": {Type: gguf.ARRAY, ElemType: gguf.INT32, Ints: allTypes},
		"tokenizer.ggml.merges":     {Type: gguf.ARRAY, ElemType: gguf.STRING, Strs: merges},
	}}
}

func TestUnknownModelOrPreIsAnError(t *testing.T) {
	f := byteVocabulary("llama-bpe", nil, nil, nil)
	f.Metadata["tokenizer.ggml.model"] = gguf.Value{Type: gguf.STRING, Str: "bert"}
	_, err := FromGGUF(f)
	if err == nil || !strings.Contains(err.Error(), `tokenizer.ggml.model: "bert"`) || !strings.Contains(err.Error(), `"gpt2"`) || !strings.Contains(err.Error(), `"llama"`) {
		t.Errorf("model bert: %v", err)
	}
	f = byteVocabulary("qwen2", nil, nil, nil)
	_, err = FromGGUF(f)
	if err == nil || !strings.Contains(err.Error(), `tokenizer.ggml.pre: "qwen2"`) || !strings.Contains(err.Error(), preTokenizerNames()) {
		t.Errorf("pre qwen2: %v", err)
	}
	delete(f.Metadata, "tokenizer.ggml.pre")
	if _, err = FromGGUF(f); err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.pre: missing") {
		t.Errorf("no pre: %v", err)
	}
	// SentencePiece has no pre-tokenizer, so any value is ignored.
	f = spmVocabulary(t, []string{"▁"}, []float32{-1})
	f.Metadata["tokenizer.ggml.pre"] = gguf.Value{Type: gguf.STRING, Str: "qwen2"}
	if _, err := FromGGUF(f); err != nil {
		t.Errorf("SentencePiece with pre qwen2: %v", err)
	}
}

func TestFlagsFollowLlamaCpp(t *testing.T) {
	for _, c := range []struct {
		pre    string
		keys   map[string]bool
		addBOS bool
	}{
		{"llama-bpe", nil, true}, // llama.cpp adds BOS for LLaMA 3's pre-tokenizer
		{"gpt-2", nil, false},
		{"smollm", nil, false},
		{"smollm", map[string]bool{"tokenizer.ggml.add_bos_token": true}, true},
		{"llama-bpe", map[string]bool{"tokenizer.ggml.add_bos_token": false}, false},
	} {
		f := byteVocabulary(c.pre, nil, nil, nil)
		for k, v := range c.keys {
			f.Metadata[k] = gguf.Value{Type: gguf.BOOL, Bool: v}
		}
		tok, err := FromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		// Without the keys, llama.cpp's BPE defaults are BOS = EOS = 11.
		if tok.AddBOS != c.addBOS || tok.AddEOS || tok.BOS != 11 || tok.EOS != 11 || tok.EOT != -1 || tok.UNK != -1 {
			t.Errorf("%s %v: AddBOS %v AddEOS %v BOS %d EOS %d EOT %d UNK %d", c.pre, c.keys, tok.AddBOS, tok.AddEOS, tok.BOS, tok.EOS, tok.EOT, tok.UNK)
		}
	}
	tok, err := FromGGUF(spmVocabulary(t, []string{"▁"}, []float32{-1}))
	if err != nil {
		t.Fatal(err)
	}
	if !tok.AddBOS || tok.AddEOS || tok.BOS != 1 || tok.EOS != 2 || tok.UNK != 0 || !tok.addSpacePrefix {
		t.Errorf("SentencePiece: AddBOS %v AddEOS %v BOS %d EOS %d UNK %d add_space_prefix %v", tok.AddBOS, tok.AddEOS, tok.BOS, tok.EOS, tok.UNK, tok.addSpacePrefix)
	}
	f := byteVocabulary("gpt-2", nil, nil, nil)
	f.Metadata["tokenizer.ggml.eos_token_id"] = gguf.Value{Type: gguf.UINT32, Uint: 256}
	if _, err := FromGGUF(f); err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.eos_token_id: id 256 is outside the vocabulary") {
		t.Errorf("EOS 256 of 256: %v", err)
	}
}

func TestEndOfTurnByText(t *testing.T) {
	// <|endoftext|> and <|im_end|> both end a turn; <|im_end|> comes first in
	// llama.cpp's list. Both end generation, as does <reponame> (a FIM token).
	f := byteVocabulary("smollm", []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<reponame>", "<x>"}, []int64{3, 3, 3, 3, 3}, nil)
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if tok.EOT != 258 {
		t.Errorf("EOT = %d, want 258 (<|im_end|>)", tok.EOT)
	}
	for id, want := range map[int]bool{256: true, 257: false, 258: true, 259: true, 260: false} {
		if tok.IsEndOfGeneration(id) != want {
			t.Errorf("IsEndOfGeneration(%d) = %v", id, !want)
		}
	}
	f.Metadata["tokenizer.ggml.eot_token_id"] = gguf.Value{Type: gguf.UINT32, Uint: 256}
	if tok, err = FromGGUF(f); err != nil || tok.EOT != 256 {
		t.Errorf("with eot_token_id 256: EOT %d, %v", tok.EOT, err)
	}
	// A token found by its text is made a control token, as llama.cpp does.
	f = byteVocabulary("gpt-2", []string{"<|im_end|>"}, []int64{4}, nil)
	if tok, err = FromGGUF(f); err != nil || tok.EOT != 256 || !tok.IsControl(256) {
		t.Errorf("user-defined <|im_end|>: EOT %d, control %v, %v", tok.EOT, tok.IsControl(256), err)
	}
}

// TestUserDefinedTokensAreCutFromUserText: Encode cuts user-defined tokens
// (type 4) out of the text but leaves control tokens to BPE, as llama.cpp's
// tokenize with parse_special false; EncodeWithSpecial cuts both, longest first.
func TestUserDefinedTokensAreCutFromUserText(t *testing.T) {
	f := byteVocabulary("gpt-2", []string{"xyz", "<c>", "<cc>"}, []int64{4, 3, 3}, nil)
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	checkEncodings(t, tok, []encodeCase{
		{"axyzb<c>", false, []int{'a', 256, 'b', '<', 'c', '>'}},
		{"axyzb<c>", true, []int{'a', 256, 'b', 257}},
		{"<cc><c>", true, []int{258, 257}},
	})
	if tok.NumSpecial() != 3 || tok.IsControl(256) || !tok.IsControl(257) {
		t.Errorf("NumSpecial %d, IsControl(xyz) %v, IsControl(<c>) %v", tok.NumSpecial(), tok.IsControl(256), tok.IsControl(257))
	}
}

// TestMergesRankByIndex: the rank of a merge rule is its index in
// tokenizer.ggml.merges, not the id of the token it makes, and only listed
// pairs merge.
func TestMergesRankByIndex(t *testing.T) {
	// Tokens 256 "ab", 257 "bc", 258 "abc"; "b c" is listed before "a b".
	f := byteVocabulary("gpt-2", []string{"ab", "bc", "abc"}, []int64{1, 1, 1}, []string{"b c", "a b", "a bc"})
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := tok.Encode("abc")
	if d := diff(got, []int{258}); d != "" { // a (b c) then a+bc; tiktoken's rule would merge ab first and stop at ab c
		t.Errorf("abc: %s", d)
	}
	f = byteVocabulary("gpt-2", []string{"ab", "bc", "abc"}, []int64{1, 1, 1}, []string{"a b", "b c"})
	tok, err = FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = tok.Encode("abc")
	if d := diff(got, []int{256, 'c'}); d != "" { // "abc" is a token but no listed pair makes it
		t.Errorf("abc without the rule a bc: %s", d)
	}
}

// spmVocabulary is a SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte
// tokens <0x00>…<0xFF>, then pieces with their scores.
func spmVocabulary(t testing.TB, pieces []string, scores []float32) *gguf.File {
	t.Helper()
	texts := []string{"<unk>", "<s>", "</s>"}
	types := []int64{2, 3, 3}
	allScores := []float64{0, 0, 0}
	for b := range 256 {
		texts, types, allScores = append(texts, fmt.Sprintf("<0x%02X>", b)), append(types, 6), append(allScores, 0)
	}
	for i, p := range pieces {
		texts, types, allScores = append(texts, p), append(types, 1), append(allScores, float64(scores[i]))
	}
	return &gguf.File{Path: "spm.gguf", Metadata: map[string]gguf.Value{
		"tokenizer.ggml.model":      {Type: gguf.STRING, Str: "llama"},
		"tokenizer.ggml.tokens":     {Type: gguf.ARRAY, ElemType: gguf.STRING, Strs: texts},
		"tokenizer.ggml.token_type": {Type: gguf.ARRAY, ElemType: gguf.INT32, Ints: types},
		"tokenizer.ggml.scores":     {Type: gguf.ARRAY, ElemType: gguf.FLOAT32, Floats: allScores},
	}}
}

// TestSentencePieceWorkedExample is spec/tokenizer.md §2.7's example.
func TestSentencePieceWorkedExample(t *testing.T) {
	f := spmVocabulary(t,
		[]string{"▁", "h", "i", "a", "▁h", "hi", "▁hi", "aa"},
		[]float32{-1, -2, -2, -2, -3, -1.5, -2.5, -4}) // ids 259…266
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text string
		want []int
	}{
		{"hi", []int{265}},            // ▁ h i: hi (-1.5) before ▁h (-3), then ▁hi
		{"aaa", []int{259, 266, 262}}, // ▁ a a a: the two aa tie, the left one merges
		{"hé", []int{263, 198, 172}},  // é is no token: its bytes <0xC3> <0xA9>
		{" hi", []int{259, 265}},      // the prefix and the text's own space
		{"", nil},
	} {
		got, err := tok.Encode(c.text)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(got, c.want); d != "" {
			t.Errorf("Encode(%q): %s", c.text, d)
		}
		if back, _ := tok.Decode(got); back != c.text {
			t.Errorf("Decode(Encode(%q)) = %q", c.text, back)
		}
	}
	// The prefix's space is stripped from the first token only: after <s> it stays.
	if text, _ := tok.Decode([]int{1, 265}); text != "<s> hi" {
		t.Errorf("Decode(<s> ▁hi) = %q", text)
	}
	// After a special token the text gets a space prefix again.
	if got, _ := tok.EncodeWithSpecial("hi</s>hi"); diff(got, []int{265, 2, 265}) != "" {
		t.Errorf("EncodeWithSpecial(hi</s>hi) = %v", got)
	}
	f.Metadata["tokenizer.ggml.add_space_prefix"] = gguf.Value{Type: gguf.BOOL, Bool: false}
	if tok, err = FromGGUF(f); err != nil {
		t.Fatal(err)
	}
	if got, _ := tok.Encode("hi"); diff(got, []int{264}) != "" {
		t.Errorf("without the space prefix: Encode(hi) = %v", got)
	}
}

func TestPreTokenizerExamples(t *testing.T) {
	for _, c := range []struct {
		pre, text string
		want      []string
	}{
		{"llama-bpe", "   hi", []string{"  ", " hi"}},
		{"gpt-2", "Hello world's  12ab!!\n\n x", []string{"Hello", " world", "'s", " ", " 12", "ab", "!!", "\n\n", " x"}},
		{"gpt-2", "it'S\tx", []string{"it", "'", "S", "\t", "x"}}, // contractions in lower case only
		{"smollm", "a12 3", []string{"a", "1", "2", " ", "3"}},
		{"default", "x+=1234;", []string{"x", "+=", "123", "4", ";"}},
		{"deepseek-llm", "Hi 世界\n", []string{"Hi", " ", "世界", "\n"}},
		{"deepseek-llm", "a\u3000b  ", []string{"a", "\u3000b", "  "}}, // U+3000 is white space, not CJK
		{"deepseek-coder", "a1,b", []string{"a", "1", ",", "b"}},
	} {
		var e encoder
		p := preTokenizers[c.pre]
		e.ends, e.moreEnds = p.pieces(e.ends, e.moreEnds, c.text)
		var got []string
		start := 0
		for _, end := range e.ends {
			got = append(got, c.text[start:end])
			start = end
		}
		if d := diff(got, c.want); d != "" {
			t.Errorf("%s: pieces of %q: %s", c.pre, c.text, d)
		}
	}
}

// TestUnicodeClassesAreLlamaCpps: the classes come from llama.cpp's data, a
// newer Unicode than Go 1.22's: U+2EBF0 (CJK Extension I, Unicode 15.1) is a
// letter, U+31EF a symbol, and an unassigned code point is undefined.
func TestUnicodeClassesAreLlamaCpps(t *testing.T) {
	for r, want := range map[rune]cpFlags{
		'a': cpLetter, '7': cpNumber, ' ': cpSeparator | cpWhitespace, '\n': cpControl | cpWhitespace, '.': cpPunct, '$': cpSymbol,
		0x2EBF0: cpLetter, 0x31EF: cpSymbol, 0x0378: cpUndefined, 0x3000: cpSeparator | cpWhitespace, 0x0301: cpMark,
		0x10FFFF: cpUndefined, 0x0085: cpControl | cpWhitespace, 0x00BD: cpNumber,
	} {
		if got := flagsOf(r); got != want {
			t.Errorf("flagsOf(%U) = %#x, want %#x", r, got, want)
		}
	}
}

// A file may name a pre-tokenizer by any of the names llama.cpp gives it: it
// loads, keeps its name, and tokenizes as the name it stands for, BOS default
// included (pretokenize.go, preTokenizerAliases).
func TestPreTokenizerAliasesTokenizeAsTheirPreTokenizer(t *testing.T) {
	c := loadCases(t)
	tokens, special := trainedVocabulary(t, c)
	load := func(pre string) *Tokenizer {
		file := tiktokenGGUF(t, tokens, special)
		file.Metadata["tokenizer.ggml.pre"] = gguf.Value{Type: gguf.STRING, Str: pre}
		tok, err := FromGGUF(file)
		if err != nil {
			t.Fatalf("pre %q: %v", pre, err)
		}
		return tok
	}
	// Digits, contractions, runs of spaces and punctuation: where the three families differ.
	text := "In 1234 they'LL say: it's  12ab!!\n\n  x+=7;\tdone "
	encodings := map[string]string{}
	for name := range preTokenizers {
		ids, err := load(name).Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		encodings[name] = fmt.Sprint(ids)
	}
	if encodings["llama-bpe"] == encodings["gpt-2"] || encodings["gpt-2"] == encodings["smollm"] {
		t.Fatalf("the text does not tell the pre-tokenizers apart: %v", encodings)
	}
	for alias, name := range preTokenizerAliases {
		if _, ok := preTokenizers[alias]; ok {
			t.Errorf("%q is both a pre-tokenizer and an alias", alias)
		}
		tok, want := load(alias), load(name)
		ids, err := tok.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(ids); got != encodings[name] || tok.pre != alias || tok.AddBOS != want.AddBOS {
			t.Errorf("pre %q: ids %s, pre %q, AddBOS %v; want %s's %s, AddBOS %v", alias, got, tok.pre, tok.AddBOS, name, encodings[name], want.AddBOS)
		}
	}
}
