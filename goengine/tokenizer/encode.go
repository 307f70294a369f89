package tokenizer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Encode returns the ids of user text (spec/tokenizer.md §2): llama.cpp's
// tokenize without special-token parsing. Control-token text in the input,
// such as "<|eot_id|>", is encoded as ordinary text, so user text can never
// produce a control id; user-defined tokens (type 4) are still cut out of the
// text first, as llama.cpp and Hugging Face do. Neither BOS nor EOS is added
// (see AddBOS). Invalid UTF-8 is an error rather than a silent replacement.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	return t.encode(text, t.userText, nil)
}

// EncodeWithSpecial is Encode that also turns the exact text of every
// control, user-defined and unknown token into its id (llama.cpp's
// parse_special): the text is cut at each such token's text, the longest
// tokens first, and the pieces between are encoded as ordinary text, each on
// its own. Use it for trusted text such as a chat template, never for user
// input.
func (t *Tokenizer) EncodeWithSpecial(text string) ([]int, error) {
	return t.encode(text, t.inText, nil)
}

// encodeTrusted is EncodeWithSpecial for a rendered chat, text in which only
// some stretches are trusted (the chat format's own text, byte ranges
// [start, end) in order): a control or unknown token's text is recognised
// only where it lies inside one of them, so the content between can never
// produce a control id, while each stretch of ordinary text between two
// tokens, format text and content together, is encoded whole, as llama.cpp
// encodes the string its chat template renders. User-defined tokens are cut
// out everywhere, as Encode does.
func (t *Tokenizer) encodeTrusted(text string, trusted [][2]int) ([]int, error) {
	return t.encode(text, t.inText, func(tok textToken, start, end int) bool {
		if t.attrs[tok.id]&attrUserDefined != 0 {
			return true
		}
		// Only the first range that ends after start can hold the token.
		i, _ := slices.BinarySearchFunc(trusted, start+1, func(r [2]int, after int) int { return cmp.Compare(r[1], after) })
		return i < len(trusted) && trusted[i][0] <= start && end <= trusted[i][1]
	})
}

func (t *Tokenizer) encode(text string, cut *cutSet, allow func(tok textToken, start, end int) bool) ([]int, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("text is not valid UTF-8")
	}
	var e encoder
	// Almost every id covers at least one byte, so one allocation is enough.
	ids := make([]int, 0, len(text)+1)
	afterToken := true // SentencePiece: the text at the start or after a token gets the space prefix
	var err error
	for _, f := range e.partition(text, cut, allow) {
		if f.id >= 0 {
			ids = append(ids, f.id)
			afterToken = true
			continue
		}
		piece := text[f.start:f.end]
		if t.spm != nil {
			ids, err = t.spm.encode(&e, ids, piece, t.addSpacePrefix && afterToken)
			if err != nil {
				return nil, err
			}
		} else {
			ids = e.byteLevel(t, ids, piece)
		}
		afterToken = false
	}
	return ids, nil
}

// encoder holds the buffers that encoding reuses from piece to piece.
type encoder struct {
	fragments, spare []fragment
	found            []bool
	ends, moreEnds   []int
	bpeSyms          []bpeSymbol
	bpeQueue         []bpeCandidate
	spmText          []byte
	spmSyms          []spmSymbol
	spmQueue         []spmCandidate
}

// byteLevel appends the ids of text without special tokens in a byte-level
// vocabulary: the pre-tokenizer's pieces, each merged by BPE.
func (e *encoder) byteLevel(t *Tokenizer, ids []int, text string) []int {
	e.ends, e.moreEnds = t.split.pieces(e.ends, e.moreEnds, text)
	start := 0
	for _, end := range e.ends {
		ids = t.bpe.encode(e, ids, text[start:end])
		start = end
	}
	return ids
}

// textToken is a token that is cut out of text before the rest is encoded.
type textToken struct {
	text           string
	id             int
	lstrip, rstrip bool
}

// cutSet is a list of tokens to cut out of text, longest first, with a trie
// of their texts that finds in one pass which of them a text contains.
type cutSet struct {
	tokens []textToken
	root   [256]int32       // the trie node after each first byte, or -1
	edges  map[uint64]int32 // node<<8 | byte -> the next node, below the root
	ends   []int32          // node -> the index in tokens of the text that ends there, or -1
}

func newCutSet(tokens []textToken) *cutSet {
	c := &cutSet{tokens: tokens, edges: map[uint64]int32{}, ends: []int32{-1}}
	for i := range c.root {
		c.root[i] = -1
	}
	for k, tok := range tokens {
		node := int32(0)
		for i := range len(tok.text) {
			next := c.child(node, tok.text[i])
			if next < 0 {
				next = int32(len(c.ends))
				c.ends = append(c.ends, -1)
				if node == 0 {
					c.root[tok.text[i]] = next
				} else {
					c.edges[uint64(node)<<8|uint64(tok.text[i])] = next
				}
			}
			node = next
		}
		c.ends[node] = int32(k)
	}
	return c
}

func (c *cutSet) child(node int32, b byte) int32 {
	if node == 0 {
		return c.root[b]
	}
	if next, ok := c.edges[uint64(node)<<8|uint64(b)]; ok {
		return next
	}
	return -1
}

// contained marks in found[k] whether text contains tokens[k].
func (c *cutSet) contained(text string, found []bool) []bool {
	found = append(found[:0], make([]bool, len(c.tokens))...)
	for i := range len(text) {
		for node, j := c.root[text[i]], i+1; node >= 0; j++ {
			if k := c.ends[node]; k >= 0 {
				found[k] = true
			}
			if j == len(text) {
				break
			}
			node = c.child(node, text[j])
		}
	}
	return found
}

// fragment is a stretch of the input: token id, or ordinary text
// text[start:end] if id < 0.
type fragment struct {
	start, end, id int
}

// partition cuts the tokens of set out of text as llama.cpp's
// tokenizer_st_partition: for each token in turn, longest first, every
// occurrence in the text not yet cut, from the left, becomes that token. A
// token with lstrip (rstrip) takes the ASCII white space before (after) it
// with it. If allow is not nil, an occurrence text[start:end] is cut only if
// allow(tok, start, end).
func (e *encoder) partition(text string, set *cutSet, allow func(tok textToken, start, end int) bool) []fragment {
	frags := e.fragments[:0]
	if text == "" {
		return frags
	}
	frags = append(frags, fragment{0, len(text), -1})
	if len(set.tokens) == 0 {
		return frags
	}
	e.found = set.contained(text, e.found)
	for k, tok := range set.tokens {
		if !e.found[k] {
			continue
		}
		out := e.spare[:0]
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, f)
				continue
			}
			start, end := f.start, f.end // text[start:end] is not yet cut
			for from := start; from < end; {
				k := strings.Index(text[from:end], tok.text)
				if k < 0 {
					break
				}
				match := from + k
				if allow != nil && !allow(tok, match, match+len(tok.text)) {
					from = match + 1 // it stays text
					continue
				}
				left := match
				if tok.lstrip {
					for left > start && isCSpace(text[left-1]) {
						left--
					}
				}
				if left > start {
					out = append(out, fragment{start, left, -1})
				}
				out = append(out, fragment{match, match + len(tok.text), tok.id})
				start = match + len(tok.text)
				if tok.rstrip {
					for start < end && isCSpace(text[start]) {
						start++
					}
				}
				from = start
			}
			if start < end {
				out = append(out, fragment{start, end, -1})
			}
		}
		frags, e.spare = out, frags
	}
	e.fragments = frags
	return frags
}

// isCSpace is C's isspace in the "C" locale, which llama.cpp uses for lstrip and rstrip.
func isCSpace(b byte) bool { return b == ' ' || '\t' <= b && b <= '\r' }
