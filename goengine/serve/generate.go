package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"gollm/goengine/engine"
	"gollm/goengine/sampler"
)

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	var options samplingRequest
	if e := decodeBody(w, r, s.maxBody, &req, &options); e != nil {
		s.writeError(w, e)
		return
	}
	prompt, e := s.promptTokens(req.Prompt)
	if e != nil {
		s.writeError(w, e)
		return
	}
	opts, e := options.validate(s, 16)
	if e != nil {
		s.writeError(w, e)
		return
	}
	s.respond(w, r, &completionStream{id: newID("cmpl-"), created: time.Now().Unix(), model: s.name}, prompt, opts, options)
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	var options samplingRequest
	if e := decodeBody(w, r, s.maxBody, &req, &options); e != nil {
		s.writeError(w, e)
		return
	}
	messages, e := chatMessages(req.Messages)
	if e != nil {
		s.writeError(w, e)
		return
	}
	if s.chat == nil {
		s.writeError(w, invalid("messages", "this server has no chat format: %v; use /v1/completions, or restart it with --chat-format", s.noChat))
		return
	}
	prompt, err := s.chat.Prompt(messages)
	if err != nil {
		s.writeError(w, invalid("messages", "messages: %v", err))
		return
	}
	opts, e := options.validate(s, max(1, s.context-len(prompt))) // by default, the rest of the context
	if e != nil {
		s.writeError(w, e)
		return
	}
	s.respond(w, r, &chatStream{id: newID("chatcmpl-"), created: time.Now().Unix(), model: s.name}, prompt, opts, options)
}

// responder shapes one endpoint's output: pieces of text as they are generated,
// then the end; whole is the non-streaming response.
type responder interface {
	start() any // the first stream chunk, or nil
	piece(text string) any
	end(finish string) any
	usage(u usage) any
	whole(text, finish string, u usage) any
}

// respond checks the prompt against the context, takes a session, generates and
// writes the response, streamed or whole.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, out responder, prompt []int, opts sampling, req samplingRequest) {
	logTokens(w, len(prompt), 0)
	if len(prompt) >= s.context {
		s.writeError(w, withCode(invalid("", "the prompt is %d tokens, but the model's context is %d: it must be shorter to leave room for the reply",
			len(prompt), s.context), "context_length_exceeded"))
		return
	}
	seed := opts.seed
	if !opts.seeded {
		seed = rand.Uint64()
	}
	pick, err := sampler.New(opts.temperature, 0, opts.topP, seed)
	if err != nil {
		s.writeError(w, invalid("", "%v", err))
		return
	}
	sess, e := s.acquire(r.Context())
	if e != nil {
		s.writeError(w, e)
		return
	}
	defer s.release(sess)
	s.active.Add(1)
	defer s.active.Add(-1)

	var stream *eventStream
	var text strings.Builder
	emit := func(piece string) error {
		text.WriteString(piece)
		return nil
	}
	if req.Stream {
		stream = s.newEventStream(w)
		if first := out.start(); first != nil {
			if err := stream.send(first); err != nil {
				return // the client went away
			}
		}
		emit = func(piece string) error { return stream.send(out.piece(piece)) }
	}
	finish, generated, err := s.generate(r.Context(), sess, prompt, opts, pick, emit)
	logTokens(w, len(prompt), generated)
	u := usage{PromptTokens: len(prompt), CompletionTokens: generated, TotalTokens: len(prompt) + generated}
	switch {
	case err != nil && r.Context().Err() != nil: // the client went away: nobody to answer
		return
	case err != nil:
		e := unavailable()
		if !errors.Is(err, errStopped) {
			e = &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}
		}
		if stream != nil { // the status is sent: tell the client in the stream why it ends
			stream.send(map[string]*apiError{"error": e})
			return
		}
		s.writeError(w, e)
	case stream != nil:
		if stream.send(out.end(finish)) != nil {
			return
		}
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			stream.send(out.usage(u))
		}
		stream.done()
	default:
		s.writeJSON(w, http.StatusOK, out.whole(text.String(), finish, u))
	}
}

var errStopped = errors.New("the server is shutting down")

// generate runs prompt through sess and generates with engine.Generate, its
// decode steps batched with other requests' and its tokens counted for
// /health. It ends with "stop" (<|end_of_text|>, <|eot_id|> or a stop
// sequence) or "length" (max_tokens or the context's end); or with an error
// when ctx ends (the client went away) or the server stops (errStopped).
func (s *Server) generate(ctx context.Context, sess *engine.Session, prompt []int, opts sampling, pick *sampler.Sampler, emit func(string) error) (finish string, generated int, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(s.stopping, func() { cancel(errStopped) })()
	logits, err := sess.Prefill(prompt)
	if err != nil {
		return "", 0, err
	}
	done := make(chan stepResult, 1)
	s.decoding.Add(1) // the scheduler waits briefly for this request's steps
	defer s.decoding.Add(-1)
	r, err := engine.Generate(ctx, sess, s.tok, logits, pick, engine.Options{
		MaxTokens: opts.maxTokens,
		Stop:      opts.stop,
		Step: func(ctx context.Context, token int) ([]float32, error) {
			return s.decodeStep(ctx, sess, token, done) // batched with other requests' steps
		},
		Sampled: func(int) { s.generated.Add(1) },
	}, emit)
	if err != nil {
		return "", r.Generated, err
	}
	finish = "stop"
	if r.Finish == engine.MaxTokens || r.Finish == engine.ContextFull {
		finish = "length"
	}
	return finish, r.Generated, nil
}

// eventStream writes server-sent events: "data: {json}\n\n", flushed at once.
type eventStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (s *Server) newEventStream(w http.ResponseWriter) *eventStream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies must not hold the stream back
	w.WriteHeader(http.StatusOK)
	return &eventStream{w: w, rc: http.NewResponseController(w), timeout: s.writeTimeout}
}

func (e *eventStream) send(v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.write("data: " + string(body) + "\n\n")
}

// done ends the stream as OpenAI's does.
func (e *eventStream) done() { e.write("data: [DONE]\n\n") }

func (e *eventStream) write(event string) error {
	e.rc.SetWriteDeadline(time.Now().Add(e.timeout))
	if _, err := fmt.Fprint(e.w, event); err != nil {
		return err
	}
	return e.rc.Flush()
}

// completionStream shapes /v1/completions output.
type completionStream struct {
	id      string
	created int64
	model   string
}

func (c *completionStream) response(choices []completionChoice, u *usage) completionResponse {
	return completionResponse{ID: c.id, Object: "text_completion", Created: c.created, Model: c.model, Choices: choices, Usage: u}
}

func (c *completionStream) start() any { return nil }

func (c *completionStream) piece(text string) any {
	return c.response([]completionChoice{{Text: text}}, nil)
}

func (c *completionStream) end(finish string) any {
	return c.response([]completionChoice{{FinishReason: &finish}}, nil)
}

func (c *completionStream) usage(u usage) any { return c.response([]completionChoice{}, &u) }

func (c *completionStream) whole(text, finish string, u usage) any {
	return c.response([]completionChoice{{Text: text, FinishReason: &finish}}, &u)
}

// chatStream shapes /v1/chat/completions output.
type chatStream struct {
	id      string
	created int64
	model   string
}

func (c *chatStream) chunk(choices []chatChoice, u *usage) chatResponse {
	return chatResponse{ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model, Choices: choices, Usage: u}
}

func (c *chatStream) start() any {
	empty := ""
	return c.chunk([]chatChoice{{Delta: &chatDelta{Role: "assistant", Content: &empty}}}, nil)
}

func (c *chatStream) piece(text string) any {
	return c.chunk([]chatChoice{{Delta: &chatDelta{Content: &text}}}, nil)
}

func (c *chatStream) end(finish string) any {
	return c.chunk([]chatChoice{{Delta: &chatDelta{}, FinishReason: &finish}}, nil)
}

func (c *chatStream) usage(u usage) any { return c.chunk([]chatChoice{}, &u) }

func (c *chatStream) whole(text, finish string, u usage) any {
	r := chatResponse{ID: c.id, Object: "chat.completion", Created: c.created, Model: c.model, Usage: &u,
		Choices: []chatChoice{{Message: &chatDelta{Role: "assistant", Content: &text}, FinishReason: &finish}}}
	return r
}
