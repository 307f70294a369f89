package tokenizer

import (
	"fmt"
	"strings"
)

// bpeVocab is a byte-level BPE vocabulary (spec/tokenizer.md §2.3): the
// tokens by their bytes, and the merge rules of tokenizer.ggml.merges, whose
// index is the rule's rank. Rules join two byte strings, so they are kept over
// interned strings, "symbols": a rule is a pair of symbols and gives a symbol.
type bpeVocab struct {
	// byText holds the bytes of every token whose GGUF text is in
	// byte-to-unicode form, which is every token BPE can produce: llama.cpp's
	// token_to_id seen through the byte-to-unicode table.
	byText      map[string]int
	byteToken   [256]int           // the token of each single byte, or -1
	byteSymbol  [256]int32         // the symbol of each single byte, or -1 if no rule names it
	rules       map[uint64]bpeRule // left<<32 | right -> rule
	symbolToken []int32            // symbol -> the token with its bytes, or -1
	wholePieces bool               // a piece that is a token is emitted whole
}

// bpeRule is one merge rule: its rank (lower merges first) and the symbol it makes.
type bpeRule struct {
	rank, merged int32
}

func pairKey(left, right int32) uint64 { return uint64(left)<<32 | uint64(uint32(right)) }

// newBPEVocab builds the tables from the GGUF texts of the tokens and the
// merge rules "L R" (L and R in byte-to-unicode form, split at the first space
// after L's first character). A rule that names a string no piece can contain
// (a character outside the table) can never apply and is left out, as is a
// repeated pair: the first one counts.
func newBPEVocab(texts, merges []string, wholePieces bool) (*bpeVocab, error) {
	v := &bpeVocab{
		byText:      make(map[string]int, len(texts)),
		rules:       make(map[uint64]bpeRule, len(merges)),
		wholePieces: wholePieces,
	}
	for id, text := range texts {
		if b, ok := unicodeToBytes(text); ok {
			v.byText[string(b)] = id
		}
	}
	for b := range v.byteToken {
		v.byteToken[b] = v.lookup(string([]byte{byte(b)}))
	}
	symbolOf := make(map[string]int32, 2*len(merges))
	var symbols []string
	intern := func(s string) int32 {
		if id, ok := symbolOf[s]; ok {
			return id
		}
		id := int32(len(symbols))
		symbolOf[s] = id
		symbols = append(symbols, s)
		return id
	}
	for rank, m := range merges {
		space := -1
		if len(m) > 1 {
			if k := strings.IndexByte(m[1:], ' '); k >= 0 {
				space = k + 1
			}
		}
		if space < 0 {
			continue // no pair: llama.cpp's ("", "") never matches
		}
		left, ok1 := unicodeToBytes(m[:space])
		right, ok2 := unicodeToBytes(m[space+1:])
		if !ok1 || !ok2 || len(right) == 0 {
			continue
		}
		l, r := intern(string(left)), intern(string(right))
		key := pairKey(l, r)
		if _, dup := v.rules[key]; dup {
			continue
		}
		v.rules[key] = bpeRule{rank: int32(rank), merged: intern(string(left) + string(right))}
	}
	if len(symbols) > 1<<31-1 {
		return nil, fmt.Errorf("tokenizer.ggml.merges: %d strings is more than the tokenizer can index", len(symbols))
	}
	v.symbolToken = make([]int32, len(symbols))
	for i, s := range symbols {
		v.symbolToken[i] = int32(v.lookup(s))
	}
	for b := range v.byteSymbol {
		v.byteSymbol[b] = -1
		if id, ok := symbolOf[string([]byte{byte(b)})]; ok {
			v.byteSymbol[b] = id
		}
	}
	return v, nil
}

// lookup is the id of the token with bytes b, or -1.
func (v *bpeVocab) lookup(b string) int {
	if id, ok := v.byText[b]; ok {
		return id
	}
	return -1
}

// bpeSymbol is one part of a piece during BPE: piece[start:end], symbol sym
// (-1 for a byte no rule names), linked to its neighbours; a merged-away part
// has end == start.
type bpeSymbol struct {
	sym        int32
	start, end int32
	prev, next int32
}

// bpeCandidate is a pair of adjacent parts that a rule can merge into merged.
type bpeCandidate struct {
	rank, left, right int32
	leftSym, rightSym int32
	merged            int32
}

// before orders candidates as llama.cpp's llm_bigram_bpe: lowest rank, then leftmost.
func (a bpeCandidate) before(b bpeCandidate) bool {
	return a.rank < b.rank || a.rank == b.rank && a.left < b.left
}

// encode appends the ids of one piece: start from its single bytes and
// repeatedly merge the adjacent pair with the lowest-ranked rule, the
// leftmost on a tie (llama.cpp's llm_tokenizer_bpe_session). A part that ends
// as no token (only in a vocabulary that lacks some byte) gives the tokens of
// its printable ASCII bytes and loses the rest, as in llama.cpp.
func (v *bpeVocab) encode(e *encoder, ids []int, piece string) []int {
	if v.wholePieces || len(piece) == 1 {
		if id := v.lookup(piece); id >= 0 {
			return append(ids, id)
		}
	}
	syms := e.bpeSyms[:0]
	for i := range len(piece) {
		syms = append(syms, bpeSymbol{sym: v.byteSymbol[piece[i]], start: int32(i), end: int32(i + 1), prev: int32(i - 1), next: int32(i + 1)})
	}
	syms[len(syms)-1].next = -1
	queue := e.bpeQueue[:0]
	for i := 0; i+1 < len(syms); i++ {
		queue = v.candidate(queue, syms, int32(i), int32(i+1))
	}
	for len(queue) > 0 {
		var c bpeCandidate
		c, queue = heapPop(queue)
		l, r := &syms[c.left], &syms[c.right]
		if l.end == l.start || r.end == r.start || l.next != c.right || l.sym != c.leftSym || r.sym != c.rightSym {
			continue // stale: one of the parts has changed since
		}
		l.sym = c.merged
		l.end, l.next = r.end, r.next
		r.end = r.start
		if l.next >= 0 {
			syms[l.next].prev = c.left
		}
		queue = v.candidate(queue, syms, l.prev, c.left)
		queue = v.candidate(queue, syms, c.left, l.next)
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		s := syms[i]
		id := -1
		if s.sym >= 0 {
			id = int(v.symbolToken[s.sym])
		} else {
			id = v.byteToken[piece[s.start]]
		}
		if id >= 0 {
			ids = append(ids, id)
			continue
		}
		for _, b := range []byte(piece[s.start:s.end]) {
			if '!' <= b && b <= '~' && v.byteToken[b] >= 0 {
				ids = append(ids, v.byteToken[b])
			}
		}
	}
	e.bpeSyms, e.bpeQueue = syms, queue
	return ids
}

// candidate queues parts i and j if a rule joins them.
func (v *bpeVocab) candidate(queue []bpeCandidate, syms []bpeSymbol, i, j int32) []bpeCandidate {
	if i < 0 || j < 0 {
		return queue
	}
	l, r := syms[i].sym, syms[j].sym
	if l < 0 || r < 0 {
		return queue
	}
	rule, ok := v.rules[pairKey(l, r)]
	if !ok {
		return queue
	}
	return heapPush(queue, bpeCandidate{rank: rule.rank, left: i, right: j, leftSym: l, rightSym: r, merged: rule.merged})
}

// heapPush and heapPop keep a binary heap in a slice, first element first, as
// container/heap would but without boxing each element in an interface.
func heapPush[T interface{ before(T) bool }](h []T, x T) []T {
	h = append(h, x)
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h[i].before(h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	return h
}

func heapPop[T interface{ before(T) bool }](h []T) (T, []T) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		first, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].before(h[first]) {
			first = l
		}
		if r < len(h) && h[r].before(h[first]) {
			first = r
		}
		if first == i {
			break
		}
		h[i], h[first] = h[first], h[i]
		i = first
	}
	return top, h
}
