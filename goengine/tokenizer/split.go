package tokenizer

import "unicode/utf8"

// The pre-tokenizer llama-bpe: LLaMA 3's split pattern (spec/tokenizer.md §2.2),
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// written by hand because Go's regexp has no lookahead for (?!\S). pieceLen
// follows the spec's procedure: each branch below is one alternative, tried in order.

// class is the character class the split pattern distinguishes.
type class uint8

const (
	classSymbol class = iota // [^\s\p{L}\p{N}]: punctuation, symbols, marks, controls
	classLetter              // \p{L}: Unicode category L
	classNumber              // \p{N}: Unicode category N (Nd, Nl, No)
	classSpace               // \s: Unicode White_Space
)

// asciiClass is classOf for the ASCII characters, the common case.
var asciiClass = func() (t [utf8.RuneSelf]class) {
	for r := range rune(utf8.RuneSelf) {
		t[r] = unicodeClass(r)
	}
	return t
}()

// unicodeClass takes the categories from llama.cpp's Unicode data
// (pretokenize.go), which is newer than Go's unicode package may be.
func unicodeClass(r rune) class {
	f := flagsOf(r)
	switch {
	case f&cpLetter != 0:
		return classLetter
	case f&cpNumber != 0:
		return classNumber
	case f&cpWhitespace != 0:
		return classSpace
	}
	return classSymbol
}

func classOf(r rune) class {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	return unicodeClass(r)
}

// next decodes the character at the start of s; s is valid UTF-8 and not empty.
func next(s string) (rune, int) {
	if s[0] < utf8.RuneSelf {
		return rune(s[0]), 1
	}
	return utf8.DecodeRuneInString(s)
}

func isLineBreak(r rune) bool { return r == '\r' || r == '\n' }

// pieceLen is the length in bytes of the first piece of s, which is valid UTF-8
// and not empty.
func pieceLen(s string) int {
	c, n := next(s)
	cls := classOf(c)
	// 1: (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if c == '\'' && n < len(s) {
		if k := contractionLen(s[n:]); k > 0 {
			return n + k
		}
	}
	// 2: [^\r\n\p{L}\p{N}]?\p{L}+
	if cls == classLetter {
		return n + runLen(s[n:], classLetter, -1)
	}
	if !isLineBreak(c) && cls != classNumber && n < len(s) {
		if c2, n2 := next(s[n:]); classOf(c2) == classLetter {
			return n + n2 + runLen(s[n+n2:], classLetter, -1)
		}
	}
	// 3: \p{N}{1,3}
	if cls == classNumber {
		return n + runLen(s[n:], classNumber, 2)
	}
	// 4:  ?[^\s\p{L}\p{N}]+[\r\n]*
	start := -1
	if cls == classSymbol {
		start = 0
	} else if c == ' ' && n < len(s) {
		if c2, _ := next(s[n:]); classOf(c2) == classSymbol {
			start = n
		}
	}
	if start >= 0 {
		j := start + runLen(s[start:], classSymbol, -1)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// 5-7: c starts a maximal whitespace run s[:end].
	end, lastStart, afterBreak, count := 0, 0, 0, 0
	for end < len(s) {
		r, m := next(s[end:])
		if classOf(r) != classSpace {
			break
		}
		lastStart = end
		end += m
		count++
		if isLineBreak(r) {
			afterBreak = end
		}
	}
	switch {
	case afterBreak > 0: // 5: \s*[\r\n]+ ends after the run's last line break
		return afterBreak
	case end == len(s): // 6: \s+(?!\S) at the end of the text
		return end
	case count >= 2: // 6: leave the last space to prefix what follows
		return lastStart
	default: // 7: \s+, a single whitespace character
		return end
	}
}

// contractionLen is the length of the contraction suffix at the start of s (the
// part after the apostrophe), or 0. (?i) uses Unicode simple case folding, under
// which U+017F (ſ, long s) matches s.
func contractionLen(s string) int {
	c, n := next(s)
	switch c {
	case 's', 'S', 'ſ', 't', 'T', 'm', 'M', 'd', 'D':
		return n
	}
	if len(s) < 2 {
		return 0
	}
	second := s[1] | 0x20 // ASCII lowercase; non-ASCII bytes never match below
	switch c | 0x20 {
	case 'r', 'v':
		if second == 'e' {
			return 2
		}
	case 'l':
		if second == 'l' {
			return 2
		}
	}
	return 0
}

// runLen is the length in bytes of the run of characters of class cls at the
// start of s, at most limit characters long (no limit if limit < 0).
func runLen(s string, cls class, limit int) int {
	j := 0
	for count := 0; j < len(s) && count != limit; count++ {
		r, m := next(s[j:])
		if classOf(r) != cls {
			break
		}
		j += m
	}
	return j
}

// split cuts valid UTF-8 text into the pieces of the split pattern.
func split(text string) []string {
	var pieces []string
	for len(text) > 0 {
		n := pieceLen(text)
		pieces = append(pieces, text[:n])
		text = text[n:]
	}
	return pieces
}
