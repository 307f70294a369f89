package tokenizer

import "fmt"

// spaceMark is U+2581 (▁), which SentencePiece writes for a space.
const spaceMark = "\u2581"

// spmVocab is a SentencePiece vocabulary (tokenizer.ggml.model = "llama",
// spec/tokenizer.md §2.7): tokens by their GGUF text, in which ▁ stands for
// a space, and the score of each.
type spmVocab struct {
	byText    map[string]int // GGUF text -> id, every token
	scores    []float32
	byteToken [256]int // <0xNN>, else the one-byte text, or -1
}

func newSPMVocab(texts []string, scores []float32) *spmVocab {
	v := &spmVocab{byText: make(map[string]int, len(texts)), scores: scores}
	for id, text := range texts {
		v.byText[text] = id
	}
	for b := range v.byteToken {
		id, ok := v.byText[fmt.Sprintf("<0x%02X>", b)]
		if !ok {
			id, ok = v.byText[string([]byte{byte(b)})]
		}
		if !ok {
			id = -1
		}
		v.byteToken[b] = id
	}
	return v
}

// spmSymbol is one part of the text during the merge: text[start:end],
// linked to its neighbours; a merged-away part has end == start.
type spmSymbol struct {
	start, end int32
	prev, next int32
}

// spmCandidate is a pair of adjacent parts whose concatenation is a token.
type spmCandidate struct {
	score       float32
	left, right int32
	size        int32 // the bytes of the pair when it was queued
}

// before orders candidates as llama.cpp's llm_bigram_spm: highest score, then leftmost.
func (a spmCandidate) before(b spmCandidate) bool {
	return a.score > b.score || a.score == b.score && a.left < b.left
}

// encode appends the ids of one stretch of text (spec/tokenizer.md §2.7):
// spaces become ▁, with one more in front if prefix is set; the text starts
// as its characters, and the adjacent pair whose concatenation is the token
// of highest score is merged, the leftmost on a tie, until no pair is a token.
// A character that is no token is given as the tokens of its UTF-8 bytes
// (<0xNN>), as llama.cpp's llm_tokenizer_spm_session.
func (v *spmVocab) encode(e *encoder, ids []int, text string, prefix bool) ([]int, error) {
	buf := e.spmText[:0]
	if prefix {
		buf = append(buf, spaceMark...)
	}
	for i := range len(text) {
		if text[i] == ' ' {
			buf = append(buf, spaceMark...)
		} else {
			buf = append(buf, text[i])
		}
	}
	e.spmText = buf
	if len(buf) == 0 {
		return ids, nil
	}
	syms := e.spmSyms[:0]
	for i := 0; i < len(buf); {
		n := utf8Len(buf[i])
		syms = append(syms, spmSymbol{start: int32(i), end: int32(i + n), prev: int32(len(syms) - 1), next: int32(len(syms) + 1)})
		i += n
	}
	syms[len(syms)-1].next = -1
	queue := e.spmQueue[:0]
	for i := 0; i+1 < len(syms); i++ {
		queue = v.candidate(queue, buf, syms, int32(i), int32(i+1))
	}
	for len(queue) > 0 {
		var c spmCandidate
		c, queue = heapPop(queue)
		l, r := &syms[c.left], &syms[c.right]
		if l.end == l.start || r.end == r.start || (l.end-l.start)+(r.end-r.start) != c.size {
			continue // stale: one of the parts has changed since
		}
		l.end, l.next = r.end, r.next
		r.end = r.start
		if l.next >= 0 {
			syms[l.next].prev = c.left
		}
		queue = v.candidate(queue, buf, syms, l.prev, c.left)
		queue = v.candidate(queue, buf, syms, c.left, l.next)
	}
	e.spmSyms, e.spmQueue = syms, queue
	for i := int32(0); i >= 0; i = syms[i].next {
		s := syms[i]
		if id, ok := v.byText[string(buf[s.start:s.end])]; ok {
			ids = append(ids, id)
			continue
		}
		// Only a single character can be no token: a merge always makes one.
		for _, b := range buf[s.start:s.end] {
			if v.byteToken[b] < 0 {
				return nil, fmt.Errorf("character %q is not in the vocabulary, which has no token for its byte 0x%02X", buf[s.start:s.end], b)
			}
			ids = append(ids, v.byteToken[b])
		}
	}
	return ids, nil
}

// candidate queues parts i and j if their concatenation is a token.
func (v *spmVocab) candidate(queue []spmCandidate, text []byte, syms []spmSymbol, i, j int32) []spmCandidate {
	if i < 0 || j < 0 {
		return queue
	}
	id, ok := v.byText[string(text[syms[i].start:syms[j].end])]
	if !ok {
		return queue
	}
	return heapPush(queue, spmCandidate{score: v.scores[id], left: i, right: j, size: syms[j].end - syms[i].start})
}

// utf8Len is the length of the UTF-8 sequence that starts with byte b (the
// text is valid UTF-8).
func utf8Len(b byte) int {
	switch {
	case b < 0xC0:
		return 1
	case b < 0xE0:
		return 2
	case b < 0xF0:
		return 3
	}
	return 4
}
