package tokenizer

import (
	"fmt"
	"slices"
	"testing"
)

// TestTokenizerGoldens loads the vocabulary from goldens/tokenizer.gguf (a
// vocabulary-only file) and reproduces every case of spec/goldens.md §2.4 exactly.
func TestTokenizerGoldens(t *testing.T) {
	tok, f := loadFile(t, "../../goldens/tokenizer.gguf")
	count, err := f.Uint("tokenizer.count")
	if err != nil || count < 10 {
		t.Fatalf("tokenizer.count = %d, %v", count, err)
	}
	for k := range count {
		key := func(s string) string { return fmt.Sprintf("tokenizer.%d.%s", k, s) }
		text, err1 := f.String(key("text"))
		special, err2 := f.Bool(key("special"))
		want, err3 := f.Int32Array(key("ids"))
		if err := firstError(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		encode := tok.Encode
		if special {
			encode = tok.EncodeWithSpecial
		}
		ids, err := encode(text)
		if err != nil {
			t.Fatalf("case %d %q: %v", k, text, err)
		}
		got := make([]int32, len(ids))
		for i, id := range ids {
			got[i] = int32(id)
		}
		if !slices.Equal(got, want) {
			t.Errorf("case %d %q:\n got    %v\n golden %v", k, text, got, want)
		}
		if back, _ := tok.Decode(ids); back != text {
			t.Errorf("case %d: decode gives %q, want %q", k, back, text)
		}
	}
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
