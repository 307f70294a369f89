package tokenizer

import "fmt"

// byteOfRune inverts GPT-2's byte-to-unicode table (spec/tokenizer.md): the
// printable bytes stand for themselves, the other 68 map in byte order to U+0100...
var byteOfRune = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			m[rune(b)] = byte(b)
		} else {
			m[next] = byte(b)
			next++
		}
	}
	return m
}()

// unicodeToBytes turns a token string of the GGUF vocabulary back into its bytes.
func unicodeToBytes(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		b, ok := byteOfRune[r]
		if !ok {
			return nil, fmt.Errorf("character %q is not in the byte-to-unicode table", r)
		}
		out = append(out, b)
	}
	return out, nil
}
