package tokenizer

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gollm/goengine/gguf"
)

// The tokenizer keys of a GGUF file (spec/tokenizer.md §4).
const (
	keyModel          = "tokenizer.ggml.model"
	keyPre            = "tokenizer.ggml.pre"
	keyTokens         = "tokenizer.ggml.tokens"
	keyTokenType      = "tokenizer.ggml.token_type"
	keyScores         = "tokenizer.ggml.scores"
	keyMerges         = "tokenizer.ggml.merges"
	keyAddBOS         = "tokenizer.ggml.add_bos_token"
	keyAddEOS         = "tokenizer.ggml.add_eos_token"
	keyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"
	keyName           = "general.name"
)

// FromGGUF reads the tokenizer of a model file (or of a vocabulary-only
// file): tokenizer.ggml.model "gpt2" (byte-level BPE, with one of the
// pre-tokenizers of preTokenizers) or "llama" (SentencePiece). Anything else
// is an error that names the key and the supported values.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	t, split, err := readKind(f)
	if err != nil {
		return nil, err
	}
	texts, err := t.readTokens(f)
	if err != nil {
		return nil, err
	}
	if err := t.readSpecials(f, texts, split); err != nil {
		return nil, err
	}
	t.tokens = make([][]byte, len(texts))
	switch t.model {
	case "gpt2":
		merges, err := f.Strings(keyMerges)
		if err != nil {
			return nil, err
		}
		if t.bpe, err = newBPEVocab(texts, merges, split.wholePieces); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		t.split = split
		for id, text := range texts {
			t.tokens[id] = tokenBytes(text, t.attrs[id], byteLevelText)
		}
	case "llama":
		scores, err := readScores(f, len(texts))
		if err != nil {
			return nil, err
		}
		t.spm = newSPMVocab(texts, scores)
		unescape := func(s string) []byte { return []byte(strings.ReplaceAll(s, spaceMark, " ")) }
		for id, text := range texts {
			t.tokens[id] = tokenBytes(text, t.attrs[id], unescape)
		}
	}
	t.specialTables(texts)
	return t, nil
}

// readKind reads tokenizer.ggml.model and, for a byte-level vocabulary, its
// pre-tokenizer.
func readKind(f *gguf.File) (*Tokenizer, preTokenizer, error) {
	model, err := f.String(keyModel)
	if err != nil {
		return nil, preTokenizer{}, err
	}
	t := &Tokenizer{model: model}
	switch model {
	case "gpt2":
		if _, ok := f.Metadata[keyPre]; !ok {
			return nil, preTokenizer{}, fmt.Errorf("%s: %s: missing (llama.cpp would guess \"default\" and warn that generation quality suffers); expected one of %s", f.Path, keyPre, preTokenizerNames())
		}
		if t.pre, err = f.String(keyPre); err != nil {
			return nil, preTokenizer{}, err
		}
		split, ok := lookupPreTokenizer(t.pre)
		if !ok {
			return nil, preTokenizer{}, fmt.Errorf("%s: %s: %q is not a pre-tokenizer goengine knows; expected one of %s, or another name llama.cpp gives one of them (spec/tokenizer.md §2.6)", f.Path, keyPre, t.pre, preTokenizerNames())
		}
		return t, split, nil
	case "llama":
		return t, preTokenizer{}, nil // SentencePiece has no pre-tokenizer: llama.cpp ignores tokenizer.ggml.pre
	}
	return nil, preTokenizer{}, fmt.Errorf("%s: %s: %q is not a tokenizer goengine knows; expected \"gpt2\" (byte-level BPE) or \"llama\" (SentencePiece)", f.Path, keyModel, model)
}

// readTokens reads the token strings and types. An empty string becomes
// [EMPTY_id] as in llama.cpp; two equal strings are an error (llama.cpp
// stops on them too).
func (t *Tokenizer) readTokens(f *gguf.File) ([]string, error) {
	texts, err := f.Strings(keyTokens)
	if err != nil {
		return nil, err
	}
	n := len(texts)
	if n == 0 {
		return nil, fmt.Errorf("%s: %s is empty", f.Path, keyTokens)
	}
	seen := make(map[string]int, n)
	for id, text := range texts {
		if text == "" {
			texts[id] = fmt.Sprintf("[EMPTY_%d]", id)
		}
		if other, dup := seen[texts[id]]; dup {
			return nil, fmt.Errorf("%s: %s: tokens %d and %d are both %q", f.Path, keyTokens, other, id, texts[id])
		}
		seen[texts[id]] = id
	}
	t.attrs = make([]attr, n)
	if _, ok := f.Metadata[keyTokenType]; !ok {
		for id := range t.attrs {
			t.attrs[id] = attrNormal // without token types every token is normal
		}
		return texts, nil
	}
	types, err := f.Int32Array(keyTokenType)
	if err != nil {
		return nil, err
	}
	if len(types) != n {
		return nil, fmt.Errorf("%s: %s has %d entries, %s has %d", f.Path, keyTokenType, len(types), keyTokens, n)
	}
	for id, typ := range types {
		t.attrs[id] = attrOfType(typ)
	}
	return texts, nil
}

// readSpecials sets the flags and special ids: llama.cpp's defaults for the
// kind of vocabulary, then the file's keys, then the tokens found by their
// text (spec/tokenizer.md §2.8).
func (t *Tokenizer) readSpecials(f *gguf.File, texts []string, split preTokenizer) error {
	ids := specialIDs{bos: -1, eos: -1, eot: -1, eom: -1, unk: -1, fimPre: -1, fimSuf: -1, fimMid: -1, fimPad: -1, fimRep: -1, fimSep: -1}
	if t.model == "llama" {
		ids.bos, ids.eos, ids.unk = 1, 2, 0
		t.AddBOS, t.addSpacePrefix = true, true
	} else {
		ids.bos, ids.eos = 11, 11
		t.AddBOS = split.addBOS
	}
	for _, b := range []struct {
		key string
		dst *bool
	}{{keyAddBOS, &t.AddBOS}, {keyAddEOS, &t.AddEOS}, {keyAddSpacePrefix, &t.addSpacePrefix}} {
		if _, ok := f.Metadata[b.key]; ok {
			var err error
			if *b.dst, err = f.Bool(b.key); err != nil {
				return err
			}
		}
	}
	if err := ids.read(f, len(texts)); err != nil {
		return err
	}
	ids.detect(texts, t.attrs)
	t.BOS, t.EOS, t.EOT, t.UNK = ids.bos, ids.eos, ids.eot, ids.unk
	t.eog = ids.endOfGeneration(texts, t.attrs)
	if name, err := f.String(keyName); err == nil {
		phi3Strips(strings.ToLower(name), texts, t.attrs)
	}
	return nil
}

// readScores reads tokenizer.ggml.scores, FLOAT32 or (as llama.cpp also
// accepts) INT32; without the key every score is 0.
func readScores(f *gguf.File, n int) ([]float32, error) {
	scores := make([]float32, n)
	v, ok := f.Metadata[keyScores]
	if !ok {
		return scores, nil
	}
	var values []float64
	if v.Type == gguf.ARRAY && v.ElemType.IsInteger() {
		ints, err := f.Int32Array(keyScores)
		if err != nil {
			return nil, err
		}
		for _, x := range ints {
			values = append(values, float64(x))
		}
	} else {
		var err error
		if values, err = f.Float64Array(keyScores); err != nil {
			return nil, err
		}
	}
	if len(values) != n {
		return nil, fmt.Errorf("%s: %s has %d entries, %s has %d", f.Path, keyScores, len(values), keyTokens, n)
	}
	for i, x := range values {
		scores[i] = float32(x) // exact: Float64Array's value rounds back to the stored float32
	}
	return scores, nil
}

// attrOfType is the attribute of a tokenizer.ggml.token_type value.
func attrOfType(typ int32) attr {
	switch typ {
	case 1:
		return attrNormal
	case 2:
		return attrUnknown
	case 3:
		return attrControl
	case 4:
		return attrUserDefined
	case 5:
		return attrUnused
	case 6:
		return attrByte
	}
	return attrUndefined
}

// tokenBytes is what a token decodes to, as llama.cpp's token_to_piece with
// special tokens shown: control, unknown and user-defined tokens their text,
// normal tokens their text decoded, byte tokens <0xNN> their byte, and unused
// or undefined tokens nothing.
func tokenBytes(text string, a attr, normal func(string) []byte) []byte {
	switch {
	case a&(attrControl|attrUnknown|attrUserDefined) != 0:
		return []byte(text)
	case a&attrNormal != 0:
		return normal(text)
	case a&attrByte != 0:
		var b uint64 // <0xNN>; llama.cpp reads the two hex digits at 3 and 4
		if len(text) >= 5 {
			b, _ = strconv.ParseUint(text[3:5], 16, 8)
		}
		return []byte{byte(b)}
	}
	return nil
}

// specialTables builds the lists of tokens cut out of text: every control,
// user-defined and unknown token for EncodeWithSpecial, the user-defined ones
// (that are not also control) for Encode; longest first, then by id.
func (t *Tokenizer) specialTables(texts []string) {
	t.specials = map[string]int{}
	var inText, userText []textToken
	for id, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) == 0 {
			continue
		}
		t.specials[texts[id]] = id
		tok := textToken{text: texts[id], id: id, lstrip: a&attrLStrip != 0, rstrip: a&attrRStrip != 0}
		inText = append(inText, tok)
		if a&(attrControl|attrUnknown) == 0 {
			userText = append(userText, tok)
		}
	}
	longestFirst := func(a, b textToken) int {
		return cmp.Or(cmp.Compare(len(b.text), len(a.text)), cmp.Compare(a.id, b.id))
	}
	slices.SortFunc(inText, longestFirst)
	slices.SortFunc(userText, longestFirst)
	t.inText, t.userText = newCutSet(inText), newCutSet(userText)
}

// specialIDs are the ids llama.cpp keeps of a vocabulary's special tokens, -1
// for none.
type specialIDs struct {
	bos, eos, eot, eom, unk int
	fimPre, fimSuf, fimMid  int
	fimPad, fimRep, fimSep  int
}

// read takes the ids the file gives. An id outside the vocabulary is an error.
func (s *specialIDs) read(f *gguf.File, n int) error {
	for _, k := range []struct {
		key string
		dst *int
	}{
		{"tokenizer.ggml.bos_token_id", &s.bos},
		{"tokenizer.ggml.eos_token_id", &s.eos},
		{"tokenizer.ggml.eot_token_id", &s.eot},
		{"tokenizer.ggml.eom_token_id", &s.eom},
		{"tokenizer.ggml.unknown_token_id", &s.unk},
		{"tokenizer.ggml.fim_pre_token_id", &s.fimPre},
		{"tokenizer.ggml.fim_suf_token_id", &s.fimSuf},
		{"tokenizer.ggml.fim_mid_token_id", &s.fimMid},
		{"tokenizer.ggml.fim_pad_token_id", &s.fimPad},
		{"tokenizer.ggml.fim_rep_token_id", &s.fimRep},
		{"tokenizer.ggml.fim_sep_token_id", &s.fimSep},
		{"tokenizer.ggml.prefix_token_id", &s.fimPre}, // older names
		{"tokenizer.ggml.suffix_token_id", &s.fimSuf},
		{"tokenizer.ggml.middle_token_id", &s.fimMid},
	} {
		if *k.dst >= n { // a default beyond a small vocabulary
			*k.dst = -1
		}
		if _, ok := f.Metadata[k.key]; !ok {
			continue
		}
		id, err := f.Uint(k.key)
		if err != nil {
			return err
		}
		if id >= uint64(n) {
			return fmt.Errorf("%s: %s: id %d is outside the vocabulary (0..%d)", f.Path, k.key, id, n-1)
		}
		*k.dst = int(id)
	}
	return nil
}

// The texts by which llama.cpp recognises special tokens that the file does
// not name (llama_vocab::impl::load). Where several tokens of a vocabulary
// match, llama.cpp takes whichever its hash table yields first; goengine takes
// the first text of the list that the vocabulary has.
var (
	eotTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
		"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"}
	eomTexts    = []string{"<|eom_id|>"}
	fimPreTexts = []string{"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"}
	fimSufTexts = []string{"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"}
	fimMidTexts = []string{"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"}
	fimPadTexts = []string{"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}
	fimRepTexts = []string{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}
	fimSepTexts = []string{"<|file_sep|>"}
	// Every token with one of these texts ends generation.
	eogTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
		"<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
		"<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["}
)

// detect finds, by text, each special token the file did not name, and marks
// it control as llama.cpp does (a converter may have typed it normal).
func (s *specialIDs) detect(texts []string, attrs []attr) {
	byText := make(map[string]int, len(texts))
	for id, text := range texts {
		byText[text] = id
	}
	for _, d := range []struct {
		dst   *int
		texts []string
	}{
		{&s.eot, eotTexts}, {&s.eom, eomTexts},
		{&s.fimPre, fimPreTexts}, {&s.fimSuf, fimSufTexts}, {&s.fimMid, fimMidTexts},
		{&s.fimPad, fimPadTexts}, {&s.fimRep, fimRepTexts}, {&s.fimSep, fimSepTexts},
	} {
		if *d.dst >= 0 {
			continue
		}
		for _, text := range d.texts {
			if id, ok := byText[text]; ok {
				*d.dst = id
				attrs[id] |= attrControl
				break
			}
		}
	}
}

// endOfGeneration is llama.cpp's set of end-of-generation tokens: the FIM
// pad, repo and file-separator tokens, every token with an end-of-generation
// text (each marked control), EOS, EOT and EOM.
func (s *specialIDs) endOfGeneration(texts []string, attrs []attr) map[int]bool {
	eog := map[int]bool{}
	for _, id := range []int{s.fimPad, s.fimRep, s.fimSep} {
		if id >= 0 {
			eog[id] = true
		}
	}
	for id, text := range texts {
		if slices.Contains(eogTexts, text) {
			eog[id] = true
			attrs[id] |= attrControl
		}
	}
	for _, id := range []int{s.eos, s.eot, s.eom} {
		if id >= 0 {
			eog[id] = true
		}
	}
	return eog
}

// phi3Strips applies llama.cpp's rule for Phi-3 models, found by the model's
// name: the white space after a special token belongs to it, except after
// <unk>, <s> and <|endoftext|>.
func phi3Strips(name string, texts []string, attrs []attr) {
	if !strings.Contains(name, "phi-3") && !strings.Contains(name, "phi3") {
		return
	}
	for id, a := range attrs {
		switch {
		case texts[id] == "<unk>" || texts[id] == "<s>" || texts[id] == "<|endoftext|>":
			attrs[id] &^= attrRStrip
		case a&(attrControl|attrUserDefined|attrUnknown) != 0 || texts[id] == "</s>":
			attrs[id] |= attrRStrip
		}
	}
}
