// Package serve is an OpenAI-compatible HTTP API over one model:
// POST /v1/completions, POST /v1/chat/completions (both streaming with
// server-sent events or not), GET /v1/models and GET /health, and a chat page
// over them at GET /.
//
// The model's weights are shared read-only. Each request generates with its own
// Session (KV cache) taken from a fixed pool of Parallel sessions; at most Queue
// more requests wait for one, and any beyond that get an immediate 429. A
// request whose client disconnects stops generating at the next token and gives
// its session back.
package serve

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"gollm/goengine/engine"
	"gollm/goengine/model"
	"gollm/goengine/tokenizer"
)

// Options configures a Server; zero fields take the defaults in brackets.
type Options struct {
	Name         string        // the model id clients name ["gollm"]
	Parallel     int           // requests generating at once, each with its own KV cache, their decode steps batched [1]
	Queue        int           // requests waiting for a session before 429 [0: none wait]
	MaxBodyBytes int64         // largest request body [1 MiB]
	WriteTimeout time.Duration // for each write to a client [30 s]
	Log          *log.Logger   // one line per request when set: "POST /v1/completions 200 prompt=12 completion=40 512ms" [none]
	// Chat renders /v1/chat/completions conversations in the model's chat
	// format (tokenizer.ChatFromGGUF) [none: that endpoint answers 400, and
	// /v1/completions works as ever]
	Chat   *tokenizer.Chat
	NoChat error // why there is no Chat, for that 400 ["the model has no chat format"]
	NoUI   bool  // no chat page at GET /, for an API-only server [false: the page is served]
}

// Server serves one model. Create it with New; it is an http.Handler.
type Server struct {
	model        *model.Model
	tok          *tokenizer.Tokenizer
	chat         *tokenizer.Chat // nil: no chat endpoint, for the reason noChat
	noChat       error
	name         string
	context      int
	sessions     chan *engine.Session // the free sessions
	waiting      chan struct{}        // a token per waiting request, capacity Queue
	maxBody      int64
	writeTimeout time.Duration
	log          *log.Logger
	created      int64
	mux          *http.ServeMux
	endpoints    []endpoint      // every route, for the mux and for notFound's answers
	stopping     context.Context // done once Stop is called: every generation ends
	stopAll      context.CancelFunc
	steps        chan stepRequest // decode steps waiting for the scheduler's next batch
	stopped      atomic.Bool

	active, queued atomic.Int64 // requests generating, waiting
	decoding       atomic.Int64 // requests past their prompt, between decode steps or in one
	generated      atomic.Int64 // tokens generated since start
	batches        atomic.Int64 // decode batches run, and the steps they carried
	batchedSteps   atomic.Int64
}

// New makes a server for m and its tokenizer, allocating its sessions.
func New(m *model.Model, tok *tokenizer.Tokenizer, o Options) *Server {
	o.Name = cmp.Or(o.Name, "gollm")
	o.Parallel = max(o.Parallel, 1)
	o.Queue = max(o.Queue, 0)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	s := &Server{
		model: m, tok: tok, chat: o.Chat, noChat: cmp.Or(o.NoChat, errors.New("the model has no chat format")),
		name: o.Name, context: m.Config.ContextLength,
		sessions: make(chan *engine.Session, o.Parallel), waiting: make(chan struct{}, o.Queue),
		maxBody: o.MaxBodyBytes, writeTimeout: o.WriteTimeout, log: o.Log, created: time.Now().Unix(),
		mux: http.NewServeMux(), steps: make(chan stepRequest), // unbuffered: a step is taken only by a running scheduler
	}
	s.stopping, s.stopAll = context.WithCancel(context.Background())
	for range o.Parallel {
		s.sessions <- engine.NewSession(m)
	}
	go s.schedule()
	s.endpoints = []endpoint{
		{"POST", "/v1/completions", s.completions},
		{"POST", "/v1/chat/completions", s.chatCompletions},
		{"GET", "/v1/models", s.models},
		{"GET", "/health", s.health},
	}
	if !o.NoUI {
		s.endpoints = append(s.endpoints, endpoint{"GET", "/", s.ui})
	}
	for _, e := range s.endpoints {
		pattern := e.path
		if pattern == "/" {
			pattern = "/{$}" // the page at / alone; "/" would match every path
		}
		s.mux.HandleFunc(e.method+" "+pattern, e.handle)
	}
	s.mux.HandleFunc("/", s.notFound)
	return s
}

// endpoint is one route: a method and an exact path.
type endpoint struct {
	method, path string
	handle       http.HandlerFunc
}

// ServeHTTP answers one request and, with Options.Log, logs it when done:
// method, path, status, the prompt's and the completion's tokens, and the
// time taken. A request whose client went away before any answer is logged
// with status 499 (nginx's "client closed request").
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.log == nil {
		s.mux.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	lw := &loggedWriter{ResponseWriter: w}
	s.mux.ServeHTTP(lw, r)
	status := lw.status
	if status == 0 {
		status = http.StatusOK // what net/http sends for a handler that writes nothing
		if r.Context().Err() != nil {
			status = 499
		}
	}
	s.log.Printf("%s %s %d prompt=%d completion=%d %dms", r.Method, r.URL.Path, status,
		lw.promptTokens, lw.completionTokens, time.Since(start).Milliseconds())
}

// loggedWriter is a response that keeps what its request's log line reports.
type loggedWriter struct {
	http.ResponseWriter
	status                         int // the first status written, 0 before
	promptTokens, completionTokens int
}

func (w *loggedWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *loggedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's flush and
// deadlines.
func (w *loggedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logTokens records a request's token counts for its log line.
func logTokens(w http.ResponseWriter, prompt, completion int) {
	if lw, ok := w.(*loggedWriter); ok {
		lw.promptTokens, lw.completionTokens = prompt, completion
	}
}

// notFound answers what no endpoint matched, in OpenAI's error shape: a 405 for
// an endpoint's path with the wrong method, a 404 otherwise.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	all := make([]string, len(s.endpoints))
	for i, e := range s.endpoints {
		if e.path == r.URL.Path {
			w.Header().Set("Allow", e.method)
			s.writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
				Message: r.URL.Path + " takes " + e.method + ", not " + r.Method})
			return
		}
		all[i] = e.method + " " + e.path
	}
	s.writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
		Message: r.Method + " " + r.URL.Path + " is not an endpoint of this server (" + strings.Join(all, ", ") + ")"})
}

// Stop ends every generation in progress at its next token, stops the
// scheduler and makes new requests fail with 503: the last step of a graceful
// shutdown, or the end of a Server.
func (s *Server) Stop() {
	if s.stopped.CompareAndSwap(false, true) {
		s.stopAll()
	}
}

// Stats is what /health reports.
type Stats struct {
	Status          string  `json:"status"`
	Model           string  `json:"model"`
	ContextLength   int     `json:"context_length"`   // tokens, the prompt and the reply together
	Parallel        int     `json:"parallel"`         // sessions: requests that can generate at once
	Active          int64   `json:"active"`           // requests generating
	Queued          int64   `json:"queued"`           // requests waiting for a session
	GeneratedTokens int64   `json:"generated_tokens"` // since start
	MeanBatch       float64 `json:"mean_batch"`       // decode steps per batch, since start
	Goroutines      int     `json:"goroutines"`
	HeapBytes       uint64  `json:"heap_bytes"`
}

// Stats reports the server's load and the process's goroutines and heap.
func (s *Server) Stats() Stats {
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	status := "ok"
	if s.stopped.Load() {
		status = "stopping"
	}
	meanBatch := 0.0
	if n := s.batches.Load(); n > 0 {
		meanBatch = float64(s.batchedSteps.Load()) / float64(n)
	}
	return Stats{Status: status, Model: s.name, ContextLength: s.context, Parallel: cap(s.sessions),
		Active: s.active.Load(), Queued: s.queued.Load(),
		GeneratedTokens: s.generated.Load(), MeanBatch: meanBatch, Goroutines: runtime.NumGoroutine(), HeapBytes: mem.HeapAlloc}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	type modelInfo struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"object": "list",
		"data": []modelInfo{{ID: s.name, Object: "model", Created: s.created, OwnedBy: "gollm"}}})
}

// acquire takes a free session, waiting while fewer than Queue others wait. It
// fails at once with 429 when the queue is full, and when the client goes away
// or the server stops while it waits.
func (s *Server) acquire(ctx context.Context) (*engine.Session, *apiError) {
	if s.stopped.Load() {
		return nil, unavailable()
	}
	select {
	case sess := <-s.sessions:
		return sess, nil
	default:
	}
	select {
	case s.waiting <- struct{}{}:
	default:
		return nil, withCode(&apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error",
			Message: "the server is busy: every session is generating and the queue is full; retry later"}, "rate_limit_exceeded")
	}
	s.queued.Add(1)
	defer func() { <-s.waiting; s.queued.Add(-1) }()
	select {
	case sess := <-s.sessions:
		return sess, nil
	case <-ctx.Done():
		return nil, &apiError{Status: 499, Type: "invalid_request_error", Message: "the client went away"}
	case <-s.stopping.Done():
		return nil, unavailable()
	}
}

func unavailable() *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Message: "the server is shutting down"}
}

func (s *Server) release(sess *engine.Session) {
	sess.Reset()
	s.sessions <- sess
}

// writeJSON sends v with status, within the write timeout.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":{"message":"encoding the response failed","type":"server_error","param":null,"code":null}}`)
	}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.writeTimeout))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func (s *Server) writeError(w http.ResponseWriter, e *apiError) {
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	s.writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

// newID is a random response id with OpenAI's prefixes ("cmpl-", "chatcmpl-").
func newID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
