// Package tokenizer reads the vocabulary of a GGUF file (spec/tokenizer.md)
// and turns text into token ids and back, giving exactly llama.cpp's ids.
//
// Two kinds of vocabulary are read. tokenizer.ggml.model = "gpt2" is
// byte-level BPE: the text is cut into pieces by the file's pre-tokenizer
// (pretokenize.go; "llama-bpe" is LLaMA 3's split pattern, written by hand in
// split.go and equal to tiktoken's), and each piece is merged by the file's
// merge rules (bpe.go). On gollm's own vocabularies this gives exactly
// tiktoken's ids. tokenizer.ggml.model = "llama" is SentencePiece, as in
// Llama 2 or Mistral (spm.go). User text never produces a control id: Encode
// treats control-token text as ordinary text, EncodeWithSpecial recognises it
// (special.go). Decode is exact for any ids.
package tokenizer

import (
	"fmt"
	"unicode/utf8"
)

// attr is what llama.cpp knows of a token (its llama_token_attr): the type of
// tokenizer.ggml.token_type, plus the overrides FromGGUF applies by text.
type attr uint16

const (
	attrNormal      attr = 1 << iota // type 1
	attrUnknown                      // type 2
	attrControl                      // type 3, or a control token recognised by its text
	attrUserDefined                  // type 4
	attrUnused                       // type 5
	attrByte                         // type 6, <0xNN>
	attrUndefined                    // type 0 or any other
	attrLStrip                       // EncodeWithSpecial drops the white space before it
	attrRStrip                       // EncodeWithSpecial drops the white space after it
)

// Tokenizer maps between text and token ids of one vocabulary.
type Tokenizer struct {
	model  string   // tokenizer.ggml.model: "gpt2" or "llama"
	pre    string   // tokenizer.ggml.pre of a gpt2 vocabulary
	tokens [][]byte // id -> the bytes it decodes to (a control token: its text)
	attrs  []attr   // id -> attributes
	// specials maps the text of every token that EncodeWithSpecial recognises
	// (control, user-defined and unknown tokens) to its id.
	specials map[string]int
	// inText holds the tokens EncodeWithSpecial cuts out of text, and
	// userText the ones Encode cuts out (user-defined tokens only).
	inText, userText *cutSet
	bpe              *bpeVocab    // model gpt2
	spm              *spmVocab    // model llama
	split            preTokenizer // model gpt2
	addSpacePrefix   bool         // tokenizer.ggml.add_space_prefix
	eog              map[int]bool // tokens that end generation

	// BOS and EOS are the begin- and end-of-sequence ids, or -1 if the
	// vocabulary has none.
	BOS, EOS int
	// EOT is the end of a chat turn (tokenizer.ggml.eot_token_id, or the token
	// found by its text, such as <|eot_id|> or <|im_end|>), or -1 if none.
	EOT int
	// UNK is the unknown token of a SentencePiece vocabulary, or -1.
	UNK int
	// AddBOS and AddEOS say whether a prompt should start with BOS and end with
	// EOS (tokenizer.ggml.add_bos_token, add_eos_token, or llama.cpp's default
	// for the vocabulary). Encode never adds them: the caller does.
	AddBOS, AddEOS bool
}

// Kind names the vocabulary's algorithm as the file does (tokenizer.ggml.model
// and pre): "gpt2 byte-level BPE, pre-tokenizer smollm" or "llama SentencePiece".
func (t *Tokenizer) Kind() string {
	if t.model == "llama" {
		return "llama SentencePiece"
	}
	return "gpt2 byte-level BPE, pre-tokenizer " + t.pre
}

// WithBOS is ids as a sequence the model reads starts: after BOS when the
// vocabulary asks for one (AddBOS; LLaMA 3's does, SmolLM2's does not).
func (t *Tokenizer) WithBOS(ids []int) []int {
	if !t.AddBOS || t.BOS < 0 {
		return ids
	}
	return append([]int{t.BOS}, ids...)
}

// VocabSize is the number of token ids.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// IsControl reports whether id is a control (or unknown) token. Generation
// prints nothing for one: its text is markup, not output (llama.cpp's
// token_to_piece without special).
func (t *Tokenizer) IsControl(id int) bool {
	return id >= 0 && id < len(t.attrs) && t.attrs[id]&(attrControl|attrUnknown) != 0
}

// IsEndOfGeneration reports whether generation should stop at id: EOS, EOT and
// the other end-of-generation tokens llama.cpp recognises by their text (its
// llama_vocab_is_eog), such as <|endoftext|> beside <|im_end|>.
func (t *Tokenizer) IsEndOfGeneration(id int) bool { return t.eog[id] }

// NumSpecial is the number of tokens EncodeWithSpecial recognises in text:
// control, user-defined and unknown tokens.
func (t *Tokenizer) NumSpecial() int { return len(t.specials) }

// TokenBytes returns the bytes that id stands for (a control token's text).
func (t *Tokenizer) TokenBytes(id int) ([]byte, error) {
	if id < 0 || id >= len(t.tokens) {
		return nil, fmt.Errorf("token id %d is outside the vocabulary (0..%d)", id, len(t.tokens)-1)
	}
	return t.tokens[id], nil
}

// Decode returns the text of ids, as llama.cpp's detokenize with control
// tokens shown: the tokens' bytes one after the other, except that a
// vocabulary that adds a space prefix (SentencePiece) loses the leading space
// of its first token again. Bytes that do not form valid UTF-8 become U+FFFD.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var out []byte
	for i, id := range ids {
		b, err := t.TokenBytes(id)
		if err != nil {
			return "", err
		}
		if i == 0 && t.addSpacePrefix && len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
		out = append(out, b...)
	}
	return validText(out), nil
}

// validText converts bytes to text, each byte that is not part of valid UTF-8
// becoming U+FFFD, so that what the engine prints is always valid UTF-8.
func validText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string([]rune(string(b)))
}

// StreamDecoder turns ids into text one at a time without splitting a UTF-8
// character across writes: bytes of an incomplete character wait for the next
// id. Each token gives its bytes unchanged (llama.cpp's token_to_piece), so a
// SentencePiece reply keeps the space before its first word.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte
}

// NewStreamDecoder starts a decoder for a stream of generated ids.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder { return &StreamDecoder{t: t} }

// Next returns the text completed by id (possibly empty). Bytes that can never
// form a character are replaced by U+FFFD.
func (d *StreamDecoder) Next(id int) (string, error) {
	b, err := d.t.TokenBytes(id)
	if err != nil {
		return "", err
	}
	d.pending = append(d.pending, b...)
	n := completePrefix(d.pending)
	text := validText(d.pending[:n])
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return text, nil
}

// Flush returns what is left at the end of the stream; an incomplete character becomes U+FFFD.
func (d *StreamDecoder) Flush() string {
	text := validText(d.pending)
	d.pending = d.pending[:0]
	return text
}

// completePrefix is the length of b without a trailing incomplete UTF-8
// sequence. Invalid bytes are passed through: waiting would never complete them.
func completePrefix(b []byte) int {
	// An incomplete sequence is at most 3 bytes: a lead byte and up to 2 continuations.
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		if b[i] < 0x80 {
			return len(b) // ASCII ends any sequence before it
		}
		if b[i] >= 0xC0 { // the lead byte of the last sequence
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}
