package tokenizer

import (
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Pre-tokenizers (spec/tokenizer.md §2.2, §2.6). A byte-level BPE vocabulary names
// one in tokenizer.ggml.pre; it is a sequence of splitters, each of which cuts
// every piece the one before it made into smaller pieces (llama.cpp's
// unicode_regex_split over the regex_exprs of its pre-tokenizer type). BPE
// then never merges across a piece boundary. Adding a pre-tokenizer is an
// entry in preTokenizers.

// preTokenizer is the sequence of splitters of one tokenizer.ggml.pre, with
// llama.cpp's flags for it.
type preTokenizer struct {
	splitters []splitter
	// wholePieces emits a piece that is itself a token as that token, before
	// any merge (llama.cpp's ignore_merges).
	wholePieces bool
	// addBOS is the default of tokenizer.ggml.add_bos_token.
	addBOS bool
}

// The pre-tokenizers goengine reads, by the value of tokenizer.ggml.pre.
var preTokenizers = map[string]preTokenizer{
	// LLaMA 3: tiktoken's split, by hand (split.go).
	"llama-bpe": {splitters: []splitter{llama3Split{}}, wholePieces: true, addBOS: true},
	// GPT-2's pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S).
	"gpt-2": {splitters: []splitter{gpt2Split{}}},
	// Every digit alone (\p{N}), then GPT-2's pattern.
	"smollm": {splitters: []splitter{matches{one(isNumber)}, gpt2Split{}}},
	// llama.cpp's fallback: runs of punctuation [\p{P}\$\+<=>\^~\|]+, GPT-2's
	// pattern, runs of digits \p{N}+, and [0-9][0-9][0-9].
	"default": {splitters: []splitter{
		matches{run(isDefaultPunct)}, gpt2Split{}, matches{run(isNumber)}, matches{repeat(isASCIIDigit, 3)},
	}},
	// DeepSeek LLM: [\r\n], \s?[Latin, Greek, Cyrillic… letters]+,
	// \s?[ASCII and full-width punctuation]+, \s+$, [CJK and more]+, \p{N}+.
	"deepseek-llm": {splitters: []splitter{
		matches{one(isLineBreakClass)},
		matches{spaceRun(deepseekLetters.contains)},
		matches{spaceRun(deepseekPunct.contains)},
		trailingSpace{},
		matches{run(deepseekCJK.contains)},
		matches{run(isNumber)},
	}},
	// DeepSeek Coder: [\r\n], \s?\p{L}+, \s?\p{P}+, [CJK and more]+, \p{N}.
	"deepseek-coder": {splitters: []splitter{
		matches{one(isLineBreakClass)},
		matches{spaceRun(isLetter)},
		matches{spaceRun(isPunct)},
		matches{run(deepseekCJK.contains)},
		matches{one(isNumber)},
	}},
}

// preTokenizerAliases are the other names that llama.cpp gives one of the
// pre-tokenizers above: the same regex_exprs and the same flags (ignore_merges,
// add_bos) in its llama_vocab::impl::load and llm_tokenizer_bpe, where each
// name decides its split and its flags and nothing else of tokenizing. The
// name in the file is kept (Tokenizer.pre); its split is the one named here.
var preTokenizerAliases = map[string]string{
	// LLAMA3: Falcon 3, Pixtral, Mi:dm 2.0 and others trained LLaMA 3's split.
	"llama3": "llama-bpe", "llama-v3": "llama-bpe", "falcon3": "llama-bpe", "falcon-h1": "llama-bpe",
	"pixtral": "llama-bpe", "midm-2.0": "llama-bpe", "lfm2": "llama-bpe", "jina-v5-nano": "llama-bpe",
	// GPT2, MPT, OLMO, JAIS, TRILLION, GRANITE_DOCLING: GPT-2's pattern alone.
	"phi-2": "gpt-2", "jina-es": "gpt-2", "jina-de": "gpt-2", "gigachat": "gpt-2", "jina-v2-es": "gpt-2",
	"jina-v2-de": "gpt-2", "a.x-4.0": "gpt-2", "mellum": "gpt-2", "modern-bert": "gpt-2", "exaone4": "gpt-2",
	"mpt": "gpt-2", "olmo": "gpt-2", "jais": "gpt-2", "trillion": "gpt-2", "granite-docling": "gpt-2",
	// STARCODER, REFACT, COMMAND_R, SMOLLM, CODESHELL, EXAONE, MINERVA, MELLUM2: each digit, then GPT-2's.
	"starcoder": "smollm", "refact": "smollm", "command-r": "smollm", "codeshell": "smollm",
	"exaone": "smollm", "minerva-7b": "smollm", "mellum2": "smollm",
}

// lookupPreTokenizer is the pre-tokenizer of a tokenizer.ggml.pre value, by its
// own name or an alias.
func lookupPreTokenizer(name string) (preTokenizer, bool) {
	if canonical, ok := preTokenizerAliases[name]; ok {
		name = canonical
	}
	p, ok := preTokenizers[name]
	return p, ok
}

// preTokenizerNames lists the keys of preTokenizers, sorted, for messages.
func preTokenizerNames() string {
	names := make([]string, 0, len(preTokenizers))
	for name := range preTokenizers {
		names = append(names, name)
	}
	slices.Sort(names)
	return `"` + strings.Join(names, `", "`) + `"`
}

// A splitter cuts the piece s[start:end] into pieces and appends the end of
// each to ends; the pieces cover the piece exactly.
type splitter interface {
	split(ends []int, s string, start, end int) []int
}

// pieces appends to ends[:0] the end of every piece of s.
func (p preTokenizer) pieces(ends, scratch []int, s string) (pieces, spare []int) {
	ends = append(ends[:0], len(s))
	for _, sp := range p.splitters {
		next, start := scratch[:0], 0
		for _, end := range ends {
			next = sp.split(next, s, start, end)
			start = end
		}
		ends, scratch = next, ends
	}
	return ends, scratch
}

// decodeAt decodes the character at s[i:], which is valid UTF-8 and not empty.
func decodeAt(s string, i int) (rune, int) {
	if s[i] < utf8.RuneSelf {
		return rune(s[i]), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// llama3Split is LLaMA 3's pattern as tiktoken applies it (split.go).
type llama3Split struct{}

func (llama3Split) split(ends []int, s string, start, end int) []int {
	for p := start; p < end; {
		p += pieceLen(s[p:end])
		ends = append(ends, p)
	}
	return ends
}

// gpt2Split is GPT-2's pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
//
// as llama.cpp's hand-written unicode_regex_split_custom_gpt2 applies it:
// alternatives in order, the contractions in lower case only, and a run of
// white space before a non-space given up to its last character, which then
// starts the next piece. White space the pattern does not match (\s+(?!\S)
// fails on a single space before a letter that is not taken by ' ?\p{L}+', as
// on a tab) is a piece of its own.
type gpt2Split struct{}

func (gpt2Split) split(ends []int, s string, start, end int) []int {
	for pos := start; pos < end; {
		c, n := decodeAt(s, pos)
		// 's|'t|'re|'ve|'m|'ll|'d
		if c == '\'' && pos+n < end {
			c1 := s[pos+n]
			if c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd' {
				pos += n + 1
				ends = append(ends, pos)
				continue
			}
			if pos+n+1 < end {
				c2 := s[pos+n+1]
				if (c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l') {
					pos += n + 2
					ends = append(ends, pos)
					continue
				}
			}
		}
		// ' ?' then letters, digits or symbols: the class of the character after
		// an optional space decides.
		from, f := pos, flagsOf(c)
		if c == ' ' {
			from, f = pos+n, 0 // 0: nothing follows inside the piece
			if from < end {
				c2, _ := decodeAt(s, from)
				f = flagsOf(c2)
			}
		}
		var class cpFlags // the run's class, 0 for symbols
		switch {
		case f&cpLetter != 0:
			class = cpLetter
		case f&cpNumber != 0:
			class = cpNumber
		case f != 0 && f&(cpWhitespace|cpLetter|cpNumber) == 0:
			class = 0
		default:
			pos = whitespaceEnd(s, pos, end)
			ends = append(ends, pos)
			continue
		}
		for pos = from; pos < end; {
			c2, m := decodeAt(s, pos)
			f2 := flagsOf(c2)
			if class != 0 && f2&class == 0 || class == 0 && (f2 == 0 || f2&(cpWhitespace|cpLetter|cpNumber) != 0) {
				break
			}
			pos += m
		}
		ends = append(ends, pos)
	}
	return ends
}

// whitespaceEnd is where GPT-2's \s+(?!\S)|\s+ ends a match at s[pos:end]:
// all of the white space at the end of the piece, else all but its last
// character, or the one character if it is alone. A character that is not
// white space (unreachable from gpt2Split) is a piece by itself.
func whitespaceEnd(s string, pos, end int) int {
	count, last, j := 0, pos, pos
	for j < end {
		c, m := decodeAt(s, j)
		if flagsOf(c)&cpWhitespace == 0 {
			break
		}
		last, j = j, j+m
		count++
	}
	switch {
	case count > 1 && j < end:
		return last
	case count > 0:
		return j
	}
	_, m := decodeAt(s, pos)
	return pos + m
}

// matches splits by one regular expression as llama.cpp does with std::regex:
// the leftmost match, then the next one from its end, and so on; each match is
// a piece and so is the text between two matches.
type matches struct {
	match matcher
}

// A matcher returns the end of its match at s[i:end], or -1 if none starts at i.
type matcher func(s string, i, end int) int

func (m matches) split(ends []int, s string, start, end int) []int {
	gap := start // the start of the text no match has taken
	for i := start; i < end; {
		if j := m.match(s, i, end); j > i {
			if i > gap {
				ends = append(ends, i)
			}
			ends = append(ends, j)
			i, gap = j, j
			continue
		}
		_, n := decodeAt(s, i)
		i += n
	}
	if gap < end {
		ends = append(ends, end)
	}
	return ends
}

// one matches a single character of a class: [\r\n], \p{N}.
func one(class func(rune) bool) matcher {
	return func(s string, i, end int) int {
		if c, n := decodeAt(s, i); class(c) {
			return i + n
		}
		return -1
	}
}

// run matches one or more characters of a class: \p{N}+.
func run(class func(rune) bool) matcher {
	return func(s string, i, end int) int {
		j := i
		for j < end {
			c, n := decodeAt(s, j)
			if !class(c) {
				break
			}
			j += n
		}
		if j == i {
			return -1
		}
		return j
	}
}

// spaceRun matches \s?C+ for a class C without white space: one white-space
// character is taken only if the run follows it.
func spaceRun(class func(rune) bool) matcher {
	runOf := run(class)
	return func(s string, i, end int) int {
		if c, n := decodeAt(s, i); isSpace(c) {
			if i+n < end {
				if j := runOf(s, i+n, end); j > 0 {
					return j
				}
			}
			return -1
		}
		return runOf(s, i, end)
	}
}

// repeat matches exactly n characters of a class: [0-9][0-9][0-9].
func repeat(class func(rune) bool, n int) matcher {
	return func(s string, i, end int) int {
		j := i
		for range n {
			if j >= end {
				return -1
			}
			c, m := decodeAt(s, j)
			if !class(c) {
				return -1
			}
			j += m
		}
		return j
	}
}

// trailingSpace is \s+$: the white space at the end of a piece becomes a
// piece of its own.
type trailingSpace struct{}

func (trailingSpace) split(ends []int, s string, start, end int) []int {
	j := end
	for j > start {
		c, n := utf8.DecodeLastRuneInString(s[start:j])
		if !isSpace(c) {
			break
		}
		j -= n
	}
	if j > start && j < end {
		ends = append(ends, j)
	}
	return append(ends, end)
}

// Character classes, with llama.cpp's Unicode data (unicode_tables.go).
//
// llama.cpp runs a pattern with \p{…} on a copy of the text in which every
// non-ASCII character is replaced by one byte standing for its class, white
// space first: a white-space character is never a letter, digit or
// punctuation there. A pattern without \p{…} sees the characters themselves,
// except that non-ASCII white space is replaced by a vertical tab, so a range
// such as [ࠀ-一] does not contain U+3000, the ideographic space. The classes
// below say so where it matters.

// cpFlags are llama.cpp's classes of a code point (unicode_cpt_flags): one
// general category, plus white space.
type cpFlags uint16

const (
	cpUndefined  cpFlags = 1 << iota // Cn, not assigned
	cpNumber                         // \p{N}
	cpLetter                         // \p{L}
	cpSeparator                      // \p{Z}
	cpMark                           // \p{M}
	cpPunct                          // \p{P}
	cpSymbol                         // \p{S}
	cpControl                        // \p{C}
	cpWhitespace                     // \s: White_Space
)

// asciiFlags is flagsOf for the ASCII characters, the common case.
var asciiFlags = func() (t [utf8.RuneSelf]cpFlags) {
	for r := range rune(utf8.RuneSelf) {
		t[r] = tableFlags(r)
	}
	return t
}()

// flagsOf is llama.cpp's unicode_cpt_flags_from_cpt.
func flagsOf(r rune) cpFlags {
	if r < utf8.RuneSelf {
		return asciiFlags[r]
	}
	return tableFlags(r)
}

func tableFlags(r rune) cpFlags {
	// Binary search for the last range that starts at or before r.
	lo, hi := 0, len(llamaRanges)-1 // llamaRanges[lo] starts at or before r, llamaRanges[hi] after
	if r < 0 || rune(llamaRanges[hi]>>8) <= r {
		return cpUndefined
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if rune(llamaRanges[mid]>>8) <= r {
			lo = mid
		} else {
			hi = mid
		}
	}
	f := cpFlags(llamaRanges[lo] & 0xFF)
	if r <= llamaWhitespace[len(llamaWhitespace)-1] {
		if _, ok := slices.BinarySearch(llamaWhitespace[:], r); ok {
			f |= cpWhitespace
		}
	}
	return f
}

func isSpace(r rune) bool { return flagsOf(r)&cpWhitespace != 0 }

// category reports whether r is of category cat in a pattern with \p{…}.
func category(r rune, cat cpFlags) bool {
	f := flagsOf(r)
	return f&cpWhitespace == 0 && f&cat != 0
}

func isNumber(r rune) bool { return category(r, cpNumber) }
func isLetter(r rune) bool { return category(r, cpLetter) }
func isPunct(r rune) bool  { return category(r, cpPunct) }

// isDefaultPunct is [\p{P}\$\+<=>\^~\|].
func isDefaultPunct(r rune) bool { return isPunct(r) || strings.ContainsRune("$+<=>^~|", r) }

func isASCIIDigit(r rune) bool     { return '0' <= r && r <= '9' }
func isLineBreakClass(r rune) bool { return r == '\r' || r == '\n' }

// charSet is a bracket expression of literal characters and ranges, such as
// [A-Za-zµ], matched as llama.cpp matches a pattern without \p{…}: its
// ranges, sorted and with overlapping ones joined.
type charSet [][2]rune

// newCharSet parses the inside of a bracket expression: characters and a-b ranges.
func newCharSet(spec string) charSet {
	chars := []rune(spec)
	var ranges charSet
	for i := 0; i < len(chars); i++ {
		if i+2 < len(chars) && chars[i+1] == '-' {
			ranges = append(ranges, [2]rune{chars[i], chars[i+2]})
			i += 2
			continue
		}
		ranges = append(ranges, [2]rune{chars[i], chars[i]})
	}
	slices.SortFunc(ranges, func(a, b [2]rune) int { return int(a[0] - b[0]) })
	var set charSet
	for _, rg := range ranges {
		if n := len(set); n > 0 && rg[0] <= set[n-1][1]+1 {
			set[n-1][1] = max(set[n-1][1], rg[1])
			continue
		}
		set = append(set, rg)
	}
	return set
}

func (set charSet) contains(r rune) bool {
	if r >= utf8.RuneSelf && isSpace(r) { // non-ASCII white space is a vertical tab to the pattern
		r = '\v'
	}
	// The last range that starts at or before r.
	k := sort.Search(len(set), func(i int) bool { return set[i][0] > r }) - 1
	return k >= 0 && r <= set[k][1]
}

// The bracket expressions of the deepseek pre-tokenizers, llama.cpp's
// (llm_tokenizer_bpe) character for character, escaped so that no editor
// normalises them.
var (
	deepseekLetters = newCharSet("A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943")
	deepseekPunct   = newCharSet("!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002")
	deepseekCJK     = newCharSet("\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF")
)
