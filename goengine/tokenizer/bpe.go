package tokenizer

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Encode returns the ids of text (spec/tokenizer.md §2): split into pieces,
// then BPE inside each piece, exactly as tiktoken's encode_ordinary.
// Special-token text in the input, such as "<|eot_id|>", is encoded as ordinary
// text, so user text can never produce a control id. Invalid UTF-8 is an error
// rather than a silent replacement.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("text is not valid UTF-8")
	}
	var e encoder
	// Every id covers at least one byte, so one allocation is enough.
	return e.ordinary(t, make([]int, 0, len(text)), text), nil
}

// EncodeWithSpecial is Encode that also turns the exact text of every special
// token into its id (tiktoken's allowed_special="all"): the text is cut at each
// special token's text, leftmost first (the longest where two start at the same
// place), and the segments between are encoded as ordinary text, each on its own.
// Use it for trusted text such as a chat template, never for user input.
func (t *Tokenizer) EncodeWithSpecial(text string) ([]int, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("text is not valid UTF-8")
	}
	var e encoder
	ids := make([]int, 0, len(text))
	start := 0
	for i := 0; i < len(text); {
		special := t.specialAt(text[i:])
		if special == "" {
			i++
			continue
		}
		ids = e.ordinary(t, ids, text[start:i])
		ids = append(ids, t.specials[special])
		i += len(special)
		start = i
	}
	return e.ordinary(t, ids, text[start:]), nil
}

// specialAt is the longest special token's text that s starts with, or "".
func (t *Tokenizer) specialAt(s string) string {
	for _, special := range t.specialsByFirst[s[0]] {
		if strings.HasPrefix(s, special) {
			return special
		}
	}
	return ""
}

// noRank marks a pair whose concatenation is not a token.
const noRank = math.MaxInt

// part is one part of a piece during BPE: it starts at byte start and is token
// id; rank is the rank of its concatenation with the next part (noRank if that
// is no token), which is also the id of the merged part.
type part struct {
	start, id, rank int
}

// encoder holds the buffer that BPE reuses from piece to piece.
type encoder struct {
	parts []part
}

// ordinary appends the ids of valid UTF-8 text without special tokens.
func (e *encoder) ordinary(t *Tokenizer, ids []int, text string) []int {
	for len(text) > 0 {
		n := pieceLen(text)
		ids = e.bpe(t, ids, text[:n])
		text = text[n:]
	}
	return ids
}

// bpe appends the ids of one piece (spec/tokenizer.md §2.3), following tiktoken's
// byte_pair_merge: start from single bytes and repeatedly merge the adjacent pair
// whose concatenation has the lowest rank, the leftmost on a tie.
func (e *encoder) bpe(t *Tokenizer, ids []int, piece string) []int {
	if len(piece) == 1 {
		return append(ids, t.byteToken[piece[0]])
	}
	// A piece that is itself a token is emitted directly, as tiktoken does.
	if id := t.rank(piece); id != noRank {
		return append(ids, id)
	}
	// parts[i] covers piece[parts[i].start:parts[i+1].start]; the last entry
	// only marks the end.
	parts := e.parts[:0]
	for i := range len(piece) {
		parts = append(parts, part{start: i, id: t.byteToken[piece[i]], rank: noRank})
	}
	parts = append(parts, part{start: len(piece), id: -1, rank: noRank})
	for i := 0; i+2 < len(parts); i++ {
		parts[i].rank = t.rank(piece[i : i+2])
	}
	for {
		best, at := noRank, -1
		for i, p := range parts[:len(parts)-1] {
			if p.rank < best {
				best, at = p.rank, i
			}
		}
		if at < 0 {
			break
		}
		// Merge parts at and at+1, then update the ranks of the pairs that
		// now end or start at the merged part.
		parts = append(parts[:at+1], parts[at+2:]...)
		parts[at].id = best
		parts[at].rank = t.pairRank(piece, parts, at)
		if at > 0 {
			parts[at-1].rank = t.pairRank(piece, parts, at-1)
		}
	}
	for _, p := range parts[:len(parts)-1] {
		ids = append(ids, p.id)
	}
	e.parts = parts
	return ids
}

// pairRank is the rank of parts i and i+1 joined, or noRank.
func (t *Tokenizer) pairRank(piece string, parts []part, i int) int {
	if i+2 >= len(parts) {
		return noRank
	}
	return t.rank(piece[parts[i].start:parts[i+2].start])
}

// rank is the id of the token with bytes b, or noRank.
func (t *Tokenizer) rank(b string) int {
	if len(b) > t.maxTokenLen {
		return noRank
	}
	if id, ok := t.ranks[b]; ok {
		return id
	}
	return noRank
}
