// Package tokenizer reads the byte-level BPE vocabulary of a GGUF file
// (spec/tokenizer.md) and turns text into token ids and back.
//
// Encode gives exactly tiktoken's ids: the text is cut into pieces by LLaMA 3's
// split pattern (written by hand in split.go, since Go's regexp has no
// lookahead), and each piece is merged by BPE, lowest rank first, with the token
// id as the rank (bpe.go). Special-token text is ordinary text for Encode;
// EncodeWithSpecial recognises it. Decode is exact for any ids.
package tokenizer

import (
	"fmt"
	"slices"
	"strings"
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
	tokens      [][]byte       // id -> bytes (special tokens: their text)
	special     []bool         // id -> is a control token
	byteToken   [256]int       // byte -> id of the single-byte token
	specials    map[string]int // text -> id of each special token
	ranks       map[string]int // bytes -> id of each ordinary token; the id is the BPE rank
	maxTokenLen int            // the longest ordinary token in bytes: longer strings need no lookup
	// specialsByFirst lists, for each first byte, the special tokens' texts that
	// start with it, longest first (for EncodeWithSpecial).
	specialsByFirst [256][]string
	BOS, EOS        int
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
	tokens := make([][]byte, len(texts))
	special := make([]bool, len(texts))
	for id, text := range texts {
		if types[id] == typeControl {
			tokens[id], special[id] = []byte(text), true
			continue
		}
		b, err := unicodeToBytes(text)
		if err != nil {
			return nil, fmt.Errorf("%s: tokenizer.ggml.tokens[%d]: %w", f.Path, id, err)
		}
		tokens[id] = b
	}
	t, err := newTokenizer(tokens, special)
	if err != nil {
		return nil, fmt.Errorf("%s: tokenizer.ggml.tokens: %w", f.Path, err)
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
	return t, nil
}

// newTokenizer builds the lookup tables of a vocabulary: tokens[id] is the
// token's bytes (a special token's text) and special[id] marks the control tokens.
// BOS and EOS are left for the caller.
func newTokenizer(tokens [][]byte, special []bool) (*Tokenizer, error) {
	t := &Tokenizer{
		tokens:   tokens,
		special:  special,
		specials: map[string]int{},
		ranks:    make(map[string]int, len(tokens)),
		EOT:      -1,
	}
	for i := range t.byteToken {
		t.byteToken[i] = -1
	}
	for id, b := range tokens {
		if special[id] {
			if len(b) == 0 {
				return nil, fmt.Errorf("special token %d is empty", id)
			}
			if other, dup := t.specials[string(b)]; dup {
				return nil, fmt.Errorf("special tokens %d and %d are both %q", other, id, b)
			}
			t.specials[string(b)] = id
			continue
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("token %d is empty", id)
		}
		// tiktoken's mergeable_ranks is a map: one id per byte string.
		if other, dup := t.ranks[string(b)]; dup {
			return nil, fmt.Errorf("tokens %d and %d are both %q", other, id, b)
		}
		t.ranks[string(b)] = id
		t.maxTokenLen = max(t.maxTokenLen, len(b))
		if len(b) == 1 {
			t.byteToken[b[0]] = id
		}
	}
	for b, id := range t.byteToken {
		if id < 0 {
			return nil, fmt.Errorf("no token for byte 0x%02x (a byte-level vocabulary needs all 256)", b)
		}
	}
	for text := range t.specials {
		t.specialsByFirst[text[0]] = append(t.specialsByFirst[text[0]], text)
	}
	for _, list := range t.specialsByFirst {
		slices.SortFunc(list, func(a, b string) int { // longest first, then by text for determinism
			if len(a) != len(b) {
				return len(b) - len(a)
			}
			return strings.Compare(a, b)
		})
	}
	if id, ok := t.specials["<|eot_id|>"]; ok {
		t.EOT = id
	}
	return t, nil
}

// VocabSize is the number of token ids.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// IsControl reports whether id is a special (control) token. Generation prints
// nothing for one: its text is markup, not output.
func (t *Tokenizer) IsControl(id int) bool { return id >= 0 && id < len(t.special) && t.special[id] }

// NumSpecial is the number of special (control) tokens.
func (t *Tokenizer) NumSpecial() int { return len(t.specials) }

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
