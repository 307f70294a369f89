package tokenizer

import (
	"strings"
	"testing"

	"gollm/goengine/gguf"
)

// load reads the goldens' vocabulary from goldens/gqa.gguf.
func load(t testing.TB) *Tokenizer {
	t.Helper()
	tok, _ := loadFile(t, "../../goldens/gqa.gguf")
	return tok
}

// loadFile reads the tokenizer of a GGUF file and returns the open file too.
func loadFile(t testing.TB, path string) (*Tokenizer, *gguf.File) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok, f
}

func TestGoldenVocabulary(t *testing.T) {
	tok := load(t)
	if tok.VocabSize() != 320 || tok.NumSpecial() != 8 || tok.BOS != 312 || tok.EOS != 313 || tok.EOT != 316 {
		t.Errorf("vocab %d, specials %d, bos %d, eos %d, eot %d", tok.VocabSize(), tok.NumSpecial(), tok.BOS, tok.EOS, tok.EOT)
	}
	for id := 0; id < 256; id++ { // spec/tokenizer.md: id b is the byte b
		if b, _ := tok.TokenBytes(id); len(b) != 1 || int(b[0]) != id {
			t.Fatalf("token %d is %q", id, b)
		}
	}
	if b, _ := tok.TokenBytes(258); string(b) != " the" { // the third merge of the placeholder corpus
		t.Errorf("token 258 = %q", b)
	}
	if b, _ := tok.TokenBytes(312); string(b) != "<|begin_of_text|>" {
		t.Errorf("token 312 = %q", b)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tok := load(t)
	for _, s := range []string{"", "Once upon a time", "héllo wörld", "日本語 🦙\r\n\t", "<|eot_id|> as text"} {
		ids, err := tok.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tok.Decode(ids)
		if err != nil || got != s {
			t.Errorf("round trip %q: got %q, %v", s, got, err)
		}
	}
}

func TestInvalidInput(t *testing.T) {
	tok := load(t)
	if _, err := tok.Encode("ok \xff"); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8: err = %v", err)
	}
	if _, err := tok.Decode([]int{320}); err == nil {
		t.Error("id 320: no error")
	}
}

func TestStreamDecoderNeverSplitsACharacter(t *testing.T) {
	tok := load(t)
	text := "a é 日 🦙 z"
	ids, _ := tok.Encode(text) // the placeholder vocabulary has no multi-byte merges: every such character arrives in pieces
	d := tok.NewStreamDecoder()
	var out strings.Builder
	for _, id := range ids {
		piece, err := d.Next(id)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(text[out.Len():], piece) || strings.ContainsRune(piece, '\uFFFD') {
			t.Fatalf("piece %q does not continue %q", piece, out.String())
		}
		out.WriteString(piece)
	}
	out.WriteString(d.Flush())
	if out.String() != text {
		t.Errorf("streamed %q, want %q", out.String(), text)
	}
}

func TestStreamDecoderFlushesBrokenBytes(t *testing.T) {
	tok := load(t)
	d := tok.NewStreamDecoder()
	if piece, _ := d.Next(0xE6); piece != "" { // a lead byte waits
		t.Errorf("lead byte gave %q", piece)
	}
	if piece, _ := d.Next('x'); piece != "\uFFFDx" { // a broken sequence is replaced, not held forever
		t.Errorf("broken sequence gave %q", piece)
	}
	d.Next(0xF0)
	if rest := d.Flush(); rest != "\uFFFD" {
		t.Errorf("flush gave %q", rest)
	}
}
