// Package tokenizer reads the byte-level BPE vocabulary of a GGUF file
// (spec/tokenizer.md) and turns text into token ids and back.
//
// For now it encodes with the byte-level fallback: one token per byte of the
// text, which every byte-level BPE vocabulary can represent (its ids 0..255 are
// the single bytes). Decoding is exact for any ids. The full BPE encoder with
// the LLaMA-3 pre-tokenizer, byte-identical to tiktoken, replaces Encode in the
// tokenizer issue.
package tokenizer

import (
	"fmt"
	"unicode/utf8"

	"gollm/goengine/gguf"
)

// Token types of tokenizer.ggml.token_type that the profile uses.
const (
	typeNormal  = 1
	typeControl = 3
)

// Tokenizer maps between text and token ids of one vocabulary.
type Tokenizer struct {
	tokens    [][]byte       // id -> bytes (special tokens: their text)
	special   []bool         // id -> is a control token
	byteToken [256]int       // byte -> id of the single-byte token
	specials  map[string]int // text -> id of each special token
	BOS, EOS  int
	// EOT is <|eot_id|>, the end of a chat turn, or -1 if the vocabulary has none.
	EOT int
}

// FromGGUF reads the gpt2-model tokenizer keys of a model file.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	model, err := f.String("tokenizer.ggml.model")
	if err != nil {
		return nil, err
	}
	if model != "gpt2" {
		return nil, fmt.Errorf("%s: tokenizer.ggml.model: expected \"gpt2\" (byte-level BPE), found %q", f.Path, model)
	}
	pre, err := f.String("tokenizer.ggml.pre")
	if err != nil {
		return nil, err
	}
	if pre != "llama-bpe" {
		return nil, fmt.Errorf("%s: tokenizer.ggml.pre: expected \"llama-bpe\", found %q", f.Path, pre)
	}
	texts, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, err
	}
	types, err := f.Int32Array("tokenizer.ggml.token_type")
	if err != nil {
		return nil, err
	}
	if len(types) != len(texts) {
		return nil, fmt.Errorf("%s: tokenizer.ggml.token_type has %d entries, tokenizer.ggml.tokens has %d", f.Path, len(types), len(texts))
	}
	t := &Tokenizer{specials: map[string]int{}, EOT: -1}
	for i := range t.byteToken {
		t.byteToken[i] = -1
	}
	for id, text := range texts {
		if types[id] == typeControl {
			t.tokens = append(t.tokens, []byte(text))
			t.special = append(t.special, true)
			t.specials[text] = id
			continue
		}
		b, err := unicodeToBytes(text)
		if err != nil {
			return nil, fmt.Errorf("%s: tokenizer.ggml.tokens[%d]: %w", f.Path, id, err)
		}
		t.tokens = append(t.tokens, b)
		t.special = append(t.special, false)
		if len(b) == 1 && t.byteToken[b[0]] < 0 {
			t.byteToken[b[0]] = id
		}
	}
	for b, id := range t.byteToken {
		if id < 0 {
			return nil, fmt.Errorf("%s: tokenizer.ggml.tokens: no token for byte 0x%02x (a byte-level vocabulary needs all 256)", f.Path, b)
		}
	}
	for _, k := range []struct {
		key string
		dst *int
	}{{"tokenizer.ggml.bos_token_id", &t.BOS}, {"tokenizer.ggml.eos_token_id", &t.EOS}} {
		id, err := f.Uint(k.key)
		if err != nil {
			return nil, err
		}
		if id >= uint64(len(texts)) {
			return nil, fmt.Errorf("%s: %s: id %d is outside the vocabulary (0..%d)", f.Path, k.key, id, len(texts)-1)
		}
		*k.dst = int(id)
	}
	if id, ok := t.specials["<|eot_id|>"]; ok {
		t.EOT = id
	}
	return t, nil
}

// VocabSize is the number of token ids.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// NumSpecial is the number of special (control) tokens.
func (t *Tokenizer) NumSpecial() int { return len(t.specials) }

// Encode returns the ids of text (byte-level fallback: one id per byte).
// Special-token text in the input is encoded as ordinary text. Invalid UTF-8 is
// an error rather than a silent replacement.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("text is not valid UTF-8")
	}
	ids := make([]int, len(text))
	for i := 0; i < len(text); i++ {
		ids[i] = t.byteToken[text[i]]
	}
	return ids, nil
}

// TokenBytes returns the bytes that id stands for (a special token's text).
func (t *Tokenizer) TokenBytes(id int) ([]byte, error) {
	if id < 0 || id >= len(t.tokens) {
		return nil, fmt.Errorf("token id %d is outside the vocabulary (0..%d)", id, len(t.tokens)-1)
	}
	return t.tokens[id], nil
}

// Decode returns the text of ids; bytes that do not form valid UTF-8 become U+FFFD.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var out []byte
	for _, id := range ids {
		b, err := t.TokenBytes(id)
		if err != nil {
			return "", err
		}
		out = append(out, b...)
	}
	return validText(out), nil
}

// validText converts bytes to text, each byte that is not part of valid UTF-8
// becoming U+FFFD, so that what the engine prints is always valid UTF-8.
func validText(b []byte) string {
	return string([]rune(string(b)))
}

// StreamDecoder turns ids into text one at a time without splitting a UTF-8
// character across writes: bytes of an incomplete character wait for the next id.
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
