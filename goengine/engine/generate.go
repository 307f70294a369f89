package engine

import (
	"context"
	"strings"

	"gollm/goengine/sampler"
	"gollm/goengine/tokenizer"
)

// Finish says why a generation ended.
type Finish int

const (
	EndOfText    Finish = iota // the model sampled <|end_of_text|> or <|eot_id|>
	StopSequence               // the text reached one of Options.Stop
	MaxTokens                  // Options.MaxTokens tokens were generated
	ContextFull                // the session's cache reached the context length
)

func (f Finish) String() string {
	switch f {
	case EndOfText:
		return "end of text"
	case StopSequence:
		return "stop sequence"
	case MaxTokens:
		return "max tokens"
	case ContextFull:
		return "context full"
	}
	return "unknown"
}

// Options shapes one generation; the zero value generates until the end of
// text or of the context.
type Options struct {
	MaxTokens int      // most tokens to generate; 0 = no limit but the context
	Stop      []string // stop sequences: the text ends before the first one, and no part of one is emitted

	// Step runs one decode step of the session; nil means the session's own
	// DecodeStep. The server batches the steps of its requests through it.
	Step func(ctx context.Context, token int) ([]float32, error)
	// Sampled, if set, is called with each generated id as it is drawn (the
	// token that ends the text is not one); the server counts them, a chat
	// keeps them to know what its cache holds.
	Sampled func(id int)
}

// Result is what a generation did.
type Result struct {
	Finish    Finish
	Generated int // tokens generated, not counting the stop token that ended them
}

// Generate samples tokens after a prompt already run through sess, whose last
// token's logits are given, and passes their text to emit as it becomes final:
// whole UTF-8 characters, never a control token's markup (a header, a reserved
// token prints nothing), never part of a stop sequence. A generated token is
// run through the model when another is to be drawn after it, so the cache
// ends holding the prompt and the generated tokens, all of them after an
// end-of-text token and all but the last otherwise (sess.Pos() says how many).
//
// It ends at <|end_of_text|> or <|eot_id|>, at a stop sequence, at MaxTokens or
// when the cache is full, and says which; or with an error when ctx ends
// (context.Cause), when emit fails or when a step does. Result.Generated
// counts the tokens generated before an error too.
func Generate(ctx context.Context, sess *Session, tok *tokenizer.Tokenizer, logits []float32,
	pick *sampler.Sampler, opts Options, emit func(text string) error) (Result, error) {
	step := opts.Step
	if step == nil {
		step = func(_ context.Context, token int) ([]float32, error) { return sess.DecodeStep(token) }
	}
	var r Result
	decoder := tok.NewStreamDecoder()
	pending := "" // decoded text not yet emitted
	for {
		if ctx.Err() != nil {
			return r, context.Cause(ctx)
		}
		id, err := pick.Sample(logits)
		if err != nil {
			return r, err
		}
		if tok.IsEndOfGeneration(id) { // <|eot_id|>, <|im_end|>, EOS, ...: the file's end-of-generation tokens
			r.Finish = EndOfText
			break
		}
		r.Generated++
		if opts.Sampled != nil {
			opts.Sampled(id)
		}
		if !tok.IsControl(id) {
			piece, err := decoder.Next(id)
			if err != nil {
				return r, err
			}
			pending += piece
		}
		if i := firstStop(pending, opts.Stop); i >= 0 {
			r.Finish = StopSequence
			return r, emitIf(emit, pending[:i])
		}
		safe := len(pending) - heldBack(pending, opts.Stop)
		if err := emitIf(emit, pending[:safe]); err != nil {
			return r, err
		}
		pending = pending[safe:]
		if r.Generated == opts.MaxTokens {
			r.Finish = MaxTokens
			break
		}
		if sess.Room() == 0 {
			r.Finish = ContextFull
			break
		}
		if logits, err = step(ctx, id); err != nil {
			return r, err
		}
	}
	pending += decoder.Flush()
	if i := firstStop(pending, opts.Stop); i >= 0 {
		pending, r.Finish = pending[:i], StopSequence
	}
	return r, emitIf(emit, pending)
}

func emitIf(emit func(string) error, text string) error {
	if text == "" {
		return nil
	}
	return emit(text)
}

// firstStop is the index in text of the earliest stop sequence, or -1.
func firstStop(text string, stops []string) int {
	first := -1
	for _, stop := range stops {
		if i := strings.Index(text, stop); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

// heldBack is how many bytes at the end of text could be the start of a stop
// sequence, and so must wait for the next token before they are emitted.
func heldBack(text string, stops []string) int {
	held := 0
	for _, stop := range stops {
		for k := min(len(stop)-1, len(text)); k > held; k-- {
			if strings.HasSuffix(text, stop[:k]) {
				held = k
				break
			}
		}
	}
	return held
}
