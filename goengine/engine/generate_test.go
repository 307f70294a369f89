package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"gollm/goengine/gguf"
	"gollm/goengine/model"
	"gollm/goengine/sampler"
	"gollm/goengine/tokenizer"
)

// goldenTokenizer is the vocabulary of goldens/gqa.gguf: 320 tokens with the
// chat control tokens.
func goldenTokenizer(tb testing.TB) *tokenizer.Tokenizer {
	tb.Helper()
	f, err := gguf.Open("../../goldens/gqa.gguf")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// randomModel is a small model with random weights over tok's vocabulary and
// its own output matrix, which tests may edit to steer the greedy pick.
func randomModel(tb testing.TB, tok *tokenizer.Tokenizer, contextLength int) *model.Model {
	tb.Helper()
	c := model.Config{VocabSize: tok.VocabSize(), Dim: 32, NLayers: 2, NHeads: 4, NKVHeads: 2, FFNDim: 64,
		ContextLength: contextLength, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: false}
	m, err := model.Random(c, gguf.F32, 5)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func greedy() *sampler.Sampler {
	pick, _ := sampler.New(0, 0, 1, 0)
	return pick
}

// greedyIDs is the greedy continuation of prompt in a fresh session, written
// out step by step: up to n tokens, the end of text or the context's end.
func greedyIDs(t *testing.T, m *model.Model, tok *tokenizer.Tokenizer, prompt []int, n int) []int {
	t.Helper()
	sess := NewSession(m)
	logits, err := sess.Prefill(prompt)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for len(ids) < n {
		id, _ := greedy().Sample(logits)
		if id == tok.EOS || id == tok.EOT {
			break
		}
		ids = append(ids, id)
		if sess.Room() == 0 {
			break
		}
		if logits, err = sess.DecodeStep(id); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// printed is the text of ids as a user sees it: control tokens print nothing.
func printed(t *testing.T, tok *tokenizer.Tokenizer, ids []int) string {
	t.Helper()
	var kept []int
	for _, id := range ids {
		if !tok.IsControl(id) {
			kept = append(kept, id)
		}
	}
	text, err := tok.Decode(kept)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// generate runs Generate after prompt in a fresh session and returns the text
// it emitted, its result and the session.
func generate(t *testing.T, m *model.Model, tok *tokenizer.Tokenizer, prompt []int, opts Options) (string, Result, *Session) {
	t.Helper()
	sess := NewSession(m)
	logits, err := sess.Prefill(prompt)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	r, err := Generate(context.Background(), sess, tok, logits, greedy(), opts, func(piece string) error {
		if piece == "" {
			t.Error("emit got an empty piece")
		}
		text.WriteString(piece)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return text.String(), r, sess
}

// TestGenerateIsTheGreedyContinuation: the text, the count and the reason are
// those of the loop written out, and the cache holds every token but the last.
func TestGenerateIsTheGreedyContinuation(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 64)
	prompt := []int{tok.BOS, 104, 105}
	want := greedyIDs(t, m, tok, prompt, 12)
	if len(want) != 12 {
		t.Fatalf("the test needs a model that writes 12 tokens, this one wrote %v", want)
	}
	var sampled []int
	text, r, sess := generate(t, m, tok, prompt, Options{MaxTokens: 12, Sampled: func(id int) { sampled = append(sampled, id) }})
	if text != printed(t, tok, want) || r != (Result{MaxTokens, 12}) || !slices.Equal(sampled, want) {
		t.Errorf("Generate = %q, %+v, sampled %v; want %q, 12 tokens, max tokens, %v", text, r, sampled, printed(t, tok, want), want)
	}
	if sess.Pos() != len(prompt)+11 {
		t.Errorf("Pos %d after 12 tokens at MaxTokens, want the prompt and 11 (the last is not run)", sess.Pos())
	}
}

func TestGenerateStopsAtTheContext(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 16)
	prompt := []int{tok.BOS, 104, 105}
	want := greedyIDs(t, m, tok, prompt, 100)
	text, r, sess := generate(t, m, tok, prompt, Options{})
	// 13 free positions after the prompt, and a 14th token drawn from the last
	if len(want) != 14 || text != printed(t, tok, want) || r != (Result{ContextFull, 14}) || sess.Room() != 0 {
		t.Errorf("Generate = %q, %+v, room %d; want %q, 14 tokens, context full, room 0", text, r, sess.Room(), printed(t, tok, want))
	}
}

// swapOutputRows makes b the greedy pick wherever a was, and a wherever b was.
func swapOutputRows(m *model.Model, a, b int) {
	dim := m.Config.Dim
	ra, rb := m.Output.F32[a*dim:(a+1)*dim], m.Output.F32[b*dim:(b+1)*dim]
	for i := range ra {
		ra[i], rb[i] = rb[i], ra[i]
	}
}

// TestGenerateEndsAtEndOfText: a model whose first pick is <|eot_id|> (or
// <|end_of_text|>) generates nothing, and the cache holds only the prompt.
func TestGenerateEndsAtEndOfText(t *testing.T) {
	tok := goldenTokenizer(t)
	for _, end := range []int{tok.EOT, tok.EOS} {
		m := randomModel(t, tok, 64)
		prompt := []int{tok.BOS, 104, 105}
		swapOutputRows(m, greedyIDs(t, m, tok, prompt, 1)[0], end)
		text, r, sess := generate(t, m, tok, prompt, Options{MaxTokens: 10})
		if text != "" || r != (Result{EndOfText, 0}) || sess.Pos() != len(prompt) {
			t.Errorf("end token %d: Generate = %q, %+v, Pos %d; want nothing, end of text, Pos %d", end, text, r, sess.Pos(), len(prompt))
		}
	}
}

// TestGenerateControlTokensPrintNothing: a header token the model writes
// counts as generated but emits no text.
func TestGenerateControlTokensPrintNothing(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 64)
	prompt := []int{tok.BOS, 104, 105}
	header, _ := tok.EncodeWithSpecial("<|start_header_id|>")
	swapOutputRows(m, greedyIDs(t, m, tok, prompt, 1)[0], header[0])
	text, r, _ := generate(t, m, tok, prompt, Options{MaxTokens: 1})
	if text != "" || r != (Result{MaxTokens, 1}) {
		t.Errorf("Generate = %q, %+v; want no text and 1 token", text, r)
	}
}

// TestGenerateStopSequence cuts the text before a stop sequence that spans two
// tokens and emits no part of it, though the first token's part was decoded
// before the second showed the sequence complete.
func TestGenerateStopSequence(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 64)
	prompt := []int{tok.BOS, 104, 105}
	ids := greedyIDs(t, m, tok, prompt, 30)
	var stop, before string
	for i := 1; i+1 < len(ids) && stop == ""; i++ {
		a, b := printed(t, tok, ids[:i]), printed(t, tok, ids[:i+1])
		if len(a) >= 2 && len(b) > len(a) && strings.Count(b, b[len(a)-1:len(a)+1]) == 1 {
			stop, before = b[len(a)-1:len(a)+1], a[:len(a)-1]
		}
	}
	if stop == "" {
		t.Fatalf("no two-token stop sequence in %q", printed(t, tok, ids))
	}
	text, r, _ := generate(t, m, tok, prompt, Options{MaxTokens: 30, Stop: []string{"never appears", stop}})
	if text != before || r.Finish != StopSequence {
		t.Errorf("stop %q: Generate = %q, %v; want %q, stop sequence", stop, text, r.Finish, before)
	}
}

func TestHeldBack(t *testing.T) {
	for _, c := range []struct {
		text  string
		stops []string
		want  int
	}{{"hello wor", []string{"world"}, 3}, {"hello", []string{"xyz"}, 0}, {"abab", []string{"abc", "bx"}, 2}, {"a", []string{"ab"}, 1}} {
		if got := heldBack(c.text, c.stops); got != c.want {
			t.Errorf("heldBack(%q, %q) = %d, want %d", c.text, c.stops, got, c.want)
		}
	}
}

// TestGenerateErrors: a cancelled context ends the generation with its cause,
// and an emit or step that fails ends it with that error.
func TestGenerateErrors(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 64)
	sess := NewSession(m)
	logits, err := sess.Prefill([]int{tok.BOS, 104, 105})
	if err != nil {
		t.Fatal(err)
	}
	logits = slices.Clone(logits)
	stopped := errors.New("stopped")
	ctx, cancel := context.WithCancelCause(context.Background())
	steps := 0
	opts := Options{Step: func(ctx context.Context, token int) ([]float32, error) {
		if steps++; steps == 3 {
			cancel(stopped)
		}
		return sess.DecodeStep(token)
	}}
	emit := func(string) error { return nil }
	if r, err := Generate(ctx, sess, tok, logits, greedy(), opts, emit); err != stopped || r.Generated != 3 {
		t.Errorf("cancelled after 3 steps: %+v, %v; want 3 tokens and the cause", r, err)
	}
	failed := errors.New("write failed")
	if _, err := Generate(context.Background(), NewSession(m), tok, logits, greedy(), Options{}, func(string) error { return failed }); err != failed {
		t.Errorf("emit fails: err = %v", err)
	}
	opts.Step = func(context.Context, int) ([]float32, error) { return nil, failed }
	if _, err := Generate(context.Background(), NewSession(m), tok, logits, greedy(), opts, emit); err != failed {
		t.Errorf("step fails: err = %v", err)
	}
}
