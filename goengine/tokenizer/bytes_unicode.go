package tokenizer

import "fmt"

// byteOfRune inverts GPT-2's byte-to-unicode table (spec/tokenizer.md §4): the
// printable bytes stand for themselves, the other 68 map in byte order to
// U+0100…U+0143. Entries are -1 for characters outside the table.
var byteOfRune = func() (t [0x144]int16) {
	for i := range t {
		t[i] = -1
	}
	next := 256
	for b := range 256 {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			t[b] = int16(b)
		} else {
			t[next] = int16(b)
			next++
		}
	}
	return t
}()

// unicodeToBytes turns a token string of a byte-level vocabulary back into its
// bytes; ok is false if a character is outside the byte-to-unicode table.
func unicodeToBytes(s string) (b []byte, ok bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r >= rune(len(byteOfRune)) || byteOfRune[r] < 0 {
			return nil, false
		}
		out = append(out, byte(byteOfRune[r]))
	}
	return out, true
}

// byteLevelText is what a normal token of a byte-level vocabulary decodes to
// (llama.cpp's llama_decode_text): its bytes, with a character outside the
// table written as [UNK_BYTE_0x…] followed by the whole text, as llama.cpp
// writes it.
func byteLevelText(s string) []byte {
	if b, ok := unicodeToBytes(s); ok {
		return b
	}
	var out []byte
	for _, r := range s {
		if r < rune(len(byteOfRune)) && byteOfRune[r] >= 0 {
			out = append(out, byte(byteOfRune[r]))
			continue
		}
		out = append(out, "[UNK_BYTE_0x"...)
		for _, c := range []byte(string(r)) {
			out = fmt.Appendf(out, "%02x", c)
		}
		out = append(out, s...)
		out = append(out, ']')
	}
	return out
}
