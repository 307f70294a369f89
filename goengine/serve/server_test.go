package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"gollm/goengine/engine"
	"gollm/goengine/gguf"
	"gollm/goengine/model"
	"gollm/goengine/sampler"
	"gollm/goengine/tokenizer"
)

// loadGolden reads goldens/gqa.gguf: a model (context 64, random weights) and
// its tokenizer.
func loadGolden(tb testing.TB) (*model.Model, *tokenizer.Tokenizer) {
	tb.Helper()
	f, err := gguf.Open("../../goldens/gqa.gguf")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		tb.Fatal(err)
	}
	return m, tok
}

// llama3 is the chat of the goldens' vocabulary, which has LLaMA 3's tokens.
func llama3(t *testing.T, tok *tokenizer.Tokenizer) *tokenizer.Chat {
	t.Helper()
	chat, err := tokenizer.NewChat(tok, tokenizer.ChatFormats["llama3"])
	if err != nil {
		t.Fatal(err)
	}
	return chat
}

// goldenServer serves goldens/gqa.gguf as "gqa".
func goldenServer(t *testing.T, o Options) (*Server, *httptest.Server) {
	t.Helper()
	m, tok := loadGolden(t)
	o.Name = "gqa"
	if o.Chat == nil && o.NoChat == nil {
		o.Chat = llama3(t, tok)
	}
	s := New(m, tok, o)
	h := httptest.NewServer(s)
	t.Cleanup(h.Close)
	return s, h
}

func post(t *testing.T, h *httptest.Server, path, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(h.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: the body is not JSON: %v", path, body, err)
	}
	return resp.StatusCode, out
}

// events posts a streaming request and returns the data of each event.
func events(t *testing.T, h *httptest.Server, path, body string) []string {
	t.Helper()
	resp, err := http.Post(h.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	var data []string
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if line, ok := strings.CutPrefix(scanner.Text(), "data: "); ok {
			data = append(data, line)
		} else if scanner.Text() != "" {
			t.Fatalf("unexpected line in the event stream: %q", scanner.Text())
		}
	}
	return data
}

// field walks a decoded JSON value: field(v, "choices", 0, "text").
func field(v any, path ...any) any {
	for _, p := range path {
		switch key := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[key]
		case int:
			a, _ := v.([]any)
			if key >= len(a) {
				return nil
			}
			v = a[key]
		}
	}
	return v
}

// greedyText is what the model continues prompt with, greedily, computed here
// with the model and tokenizer directly, up to n tokens or the end of text.
func greedyText(t *testing.T, s *Server, prompt []int, n int) (string, int) {
	text, ids := greedyIDs(t, s, prompt, n)
	return text, len(ids)
}

func greedyIDs(t *testing.T, s *Server, prompt []int, n int) (string, []int) {
	t.Helper()
	sess := engine.NewSession(s.model)
	logits, err := sess.Prefill(prompt)
	if err != nil {
		t.Fatal(err)
	}
	pick, _ := sampler.New(0, 0, 1, 0)
	var ids []int
	for len(ids) < n && sess.Pos() < s.context {
		id, _ := pick.Sample(logits)
		if s.tok.IsEndOfGeneration(id) {
			break
		}
		ids = append(ids, id)
		if logits, err = sess.DecodeStep(id); err != nil {
			t.Fatal(err)
		}
	}
	var printed []int // what a client sees: control tokens print nothing
	for _, id := range ids {
		if !s.tok.IsControl(id) {
			printed = append(printed, id)
		}
	}
	text, _ := s.tok.Decode(printed)
	return text, ids
}

func TestModelsAndHealth(t *testing.T) {
	_, h := goldenServer(t, Options{})
	resp, err := http.Get(h.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var models map[string]any
	json.NewDecoder(resp.Body).Decode(&models)
	resp.Body.Close()
	if field(models, "object") != "list" || field(models, "data", 0, "id") != "gqa" || field(models, "data", 0, "object") != "model" {
		t.Errorf("/v1/models = %v", models)
	}
	if stats := health(t, h); stats.Status != "ok" || stats.Model != "gqa" || stats.ContextLength != 64 || stats.Parallel != 1 || stats.Goroutines == 0 {
		t.Errorf("/health = %+v", stats)
	}
}

func TestCompletionIsTheModelsGreedyContinuation(t *testing.T) {
	s, h := goldenServer(t, Options{})
	ids, _ := s.tok.Encode("the robot")
	prompt := append([]int{s.tok.BOS}, ids...)
	want, n := greedyText(t, s, prompt, 10)
	code, body := post(t, h, "/v1/completions", `{"model": "gqa", "prompt": "the robot", "max_tokens": 10, "temperature": 0}`)
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	if got := field(body, "choices", 0, "text"); got != want {
		t.Errorf("text %q, want the greedy continuation %q", got, want)
	}
	finish := "length"
	if n < 10 {
		finish = "stop"
	}
	if field(body, "object") != "text_completion" || field(body, "choices", 0, "finish_reason") != finish {
		t.Errorf("response %v: want object text_completion, finish_reason %s", body, finish)
	}
	u := field(body, "usage").(map[string]any)
	if u["prompt_tokens"] != float64(len(prompt)) || u["completion_tokens"] != float64(n) || u["total_tokens"] != float64(len(prompt)+n) {
		t.Errorf("usage %v: want %d prompt and %d completion tokens", u, len(prompt), n)
	}
}

// TestStreamingMatchesWhole: the same seeded request streamed and not gives the
// same text; the stream ends with a finish_reason chunk, usage if asked, [DONE].
func TestStreamingMatchesWhole(t *testing.T) {
	_, h := goldenServer(t, Options{})
	for _, c := range []struct{ path, body, textPath string }{
		{"/v1/completions", `"prompt": "once upon", "max_tokens": 20, "seed": 7, "temperature": 0.9`, "text"},
		{"/v1/chat/completions", `"messages": [{"role": "user", "content": "hi"}], "max_tokens": 20, "seed": 7`, "content"},
	} {
		_, whole := post(t, h, c.path, "{"+c.body+"}")
		data := events(t, h, c.path, `{"stream": true, "stream_options": {"include_usage": true}, `+c.body+"}")
		if len(data) < 3 || data[len(data)-1] != "[DONE]" {
			t.Fatalf("%s: events %q should end with [DONE]", c.path, data)
		}
		var text strings.Builder
		var chunks []map[string]any
		for _, d := range data[:len(data)-1] {
			var chunk map[string]any
			if err := json.Unmarshal([]byte(d), &chunk); err != nil {
				t.Fatalf("%s: event %q is not JSON", c.path, d)
			}
			chunks = append(chunks, chunk)
			if s, ok := field(chunk, "choices", 0, c.textPath).(string); ok {
				text.WriteString(s)
			} else if s, ok := field(chunk, "choices", 0, "delta", c.textPath).(string); ok {
				text.WriteString(s)
			}
		}
		wantText := field(whole, "choices", 0, c.textPath)
		if c.textPath == "content" {
			wantText = field(whole, "choices", 0, "message", "content")
		}
		if text.String() != wantText {
			t.Errorf("%s: streamed %q, whole %q", c.path, text.String(), wantText)
		}
		last, finishChunk := chunks[len(chunks)-1], chunks[len(chunks)-2]
		if field(finishChunk, "choices", 0, "finish_reason") != field(whole, "choices", 0, "finish_reason") {
			t.Errorf("%s: stream finish %v, whole %v", c.path, finishChunk, field(whole, "choices", 0, "finish_reason"))
		}
		if field(last, "usage", "completion_tokens") != field(whole, "usage", "completion_tokens") {
			t.Errorf("%s: stream usage %v, whole %v", c.path, field(last, "usage"), field(whole, "usage"))
		}
	}
}

// TestPromptAsTokenIDs: a prompt of token ids is the whole prompt, as given;
// neutral values of unsupported options are accepted.
func TestPromptAsTokenIDs(t *testing.T) {
	s, h := goldenServer(t, Options{})
	ids, _ := s.tok.Encode("the robot")
	prompt := append([]int{s.tok.BOS}, ids...)
	want, _ := greedyText(t, s, prompt, 6)
	list, _ := json.Marshal(prompt)
	code, body := post(t, h, "/v1/completions", `{"prompt": `+string(list)+`, "max_tokens": 6, "temperature": 0,
		"logprobs": null, "tools": [], "response_format": {"type": "text"}, "echo": false, "best_of": 1}`)
	if code != 200 || field(body, "choices", 0, "text") != want || field(body, "usage", "prompt_tokens") != float64(len(prompt)) {
		t.Errorf("status %d, %v; want the text %q after %d prompt tokens", code, body, want, len(prompt))
	}
}

func TestChatFormat(t *testing.T) {
	s, h := goldenServer(t, Options{})
	prompt, err := s.chat.Prompt([]tokenizer.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := greedyText(t, s, prompt, 8)
	code, body := post(t, h, "/v1/chat/completions", `{"model": "gqa", "max_tokens": 8, "temperature": 0, "messages": [
		{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hello"}]}]}`)
	if code != 200 || field(body, "object") != "chat.completion" || field(body, "choices", 0, "message", "role") != "assistant" {
		t.Fatalf("status %d: %v", code, body)
	}
	if got := field(body, "choices", 0, "message", "content"); got != want {
		t.Errorf("content %q, want the greedy reply to the chat prompt %q", got, want)
	}
	if field(body, "usage", "prompt_tokens") != float64(len(prompt)) {
		t.Errorf("prompt_tokens %v, want %d", field(body, "usage", "prompt_tokens"), len(prompt))
	}
}

// TestNoChatFormat: a model without a chat format still completes text; its
// chat endpoint answers 400 with the reason.
func TestNoChatFormat(t *testing.T) {
	_, h := goldenServer(t, Options{NoChat: errors.New("the file has no tokenizer.chat_template")})
	if code, body := post(t, h, "/v1/completions", `{"model": "gqa", "prompt": "the robot", "max_tokens": 4}`); code != 200 {
		t.Errorf("completions: status %d: %v", code, body)
	}
	code, body := post(t, h, "/v1/chat/completions", `{"model": "gqa", "messages": [{"role": "user", "content": "hi"}]}`)
	msg, _ := field(body, "error", "message").(string)
	if code != 400 || !strings.Contains(msg, "no chat format: the file has no tokenizer.chat_template") || !strings.Contains(msg, "--chat-format") {
		t.Errorf("chat without a format: status %d, %v", code, body)
	}
}

// TestStopSequences cuts the greedy text at a stop string that spans two
// tokens, whole and streamed: streamed, the first token's part of it must be
// held back until the next token shows whether the stop sequence completes.
func TestStopSequences(t *testing.T) {
	s, h := goldenServer(t, Options{})
	full, all := greedyIDs(t, s, []int{s.tok.BOS}, 30)
	var ids []int
	for _, id := range all {
		if !s.tok.IsControl(id) {
			ids = append(ids, id)
		}
	}
	stop, prefix := "", ""
	for i := 2; i+1 < len(ids) && stop == ""; i++ { // a boundary between two tokens of 2+ characters
		a, _ := s.tok.Decode(ids[:i])
		b, _ := s.tok.Decode(ids[:i+1])
		if len(a) >= 4 && len(b) > len(a) && printable(a[len(a)-2:]+b[len(a):len(a)+1]) {
			stop, prefix = a[len(a)-2:]+b[len(a):len(a)+1], a[:len(a)-2]
		}
	}
	if stop == "" || !strings.HasPrefix(full, prefix+stop) {
		t.Fatalf("no two-token stop sequence found in %q", full)
	}
	want := full[:strings.Index(full, stop)]
	req := fmt.Sprintf(`"prompt": "", "max_tokens": 30, "temperature": 0, "stop": [%q, "never appears"]`, stop)
	_, body := post(t, h, "/v1/completions", "{"+req+"}")
	if field(body, "choices", 0, "text") != want || field(body, "choices", 0, "finish_reason") != "stop" {
		t.Errorf("stop %q in %q: got %v, want text %q and finish stop", stop, full, field(body, "choices", 0), want)
	}
	var streamed strings.Builder
	for _, d := range events(t, h, "/v1/completions", `{"stream": true, `+req+"}") {
		var chunk map[string]any
		if json.Unmarshal([]byte(d), &chunk) == nil {
			s, _ := field(chunk, "choices", 0, "text").(string)
			streamed.WriteString(s)
		}
	}
	if streamed.String() != want {
		t.Errorf("streamed %q, want %q", streamed.String(), want)
	}
}

func printable(s string) bool {
	for _, c := range []byte(s) {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// TestBadRequests: each gets a 4xx in OpenAI's error shape naming the problem,
// and the server goes on serving.
func TestBadRequests(t *testing.T) {
	_, h := goldenServer(t, Options{MaxBodyBytes: 4096})
	cases := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"malformed JSON", "POST", "/v1/completions", `{"prompt": "x",`, 400, "not valid JSON"},
		{"not an object", "POST", "/v1/completions", `[1, 2]`, 400, "the request body must be an object, found a JSON array"},
		{"wrong type", "POST", "/v1/completions", `{"prompt": "x", "max_tokens": "ten"}`, 400, "max_tokens: expected an integer, found a JSON string"},
		{"unknown model", "POST", "/v1/completions", `{"model": "gpt-4", "prompt": "x"}`, 404, `"gpt-4" does not exist`},
		{"no prompt", "POST", "/v1/completions", `{"model": "gqa"}`, 400, "prompt is required"},
		{"prompt too long", "POST", "/v1/completions", `{"prompt": "` + strings.Repeat("robot ", 80) + `"}`, 400, "the model's context is 64"},
		{"negative max_tokens", "POST", "/v1/completions", `{"prompt": "x", "max_tokens": -1}`, 400, "max_tokens must be between 1 and the context length 64"},
		{"absurd max_tokens", "POST", "/v1/completions", `{"prompt": "x", "max_tokens": 1000000000}`, 400, "max_tokens must be between"},
		{"temperature", "POST", "/v1/completions", `{"prompt": "x", "temperature": 5}`, 400, "temperature must be between 0 and 2"},
		{"top_p", "POST", "/v1/completions", `{"prompt": "x", "top_p": 0}`, 400, "top_p must be in (0, 1]"},
		{"n", "POST", "/v1/completions", `{"prompt": "x", "n": 3}`, 400, "n must be 1"},
		{"stop type", "POST", "/v1/completions", `{"prompt": "x", "stop": 5}`, 400, "stop must be a string or an array"},
		{"prompt ids", "POST", "/v1/completions", `{"prompt": [1, 320]}`, 400, "token id 320 is outside the vocabulary"},
		{"prompt type", "POST", "/v1/completions", `{"prompt": {"a": 1}}`, 400, "or an array of token ids"},
		{"tools", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}`, 400, "tools is not supported"},
		{"json mode", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}`, 400, `response_format "json_object" is not supported`},
		{"echo", "POST", "/v1/completions", `{"prompt": "x", "echo": true}`, 400, "echo is not supported"},
		{"logit_bias", "POST", "/v1/completions", `{"prompt": "x", "logit_bias": {"5": 100}}`, 400, "logit_bias is not supported"},
		{"invalid UTF-8", "POST", "/v1/completions", "{\"prompt\": \"\xff\xfe\"}", 400, "not valid UTF-8"},
		{"too large", "POST", "/v1/completions", `{"prompt": "` + strings.Repeat("a", 5000) + `"}`, 413, "over the limit of 4096 bytes"},
		{"no messages", "POST", "/v1/chat/completions", `{"messages": []}`, 400, "messages must be a non-empty array"},
		{"bad role", "POST", "/v1/chat/completions", `{"messages": [{"role": "tool", "content": "x"}]}`, 400, "messages[0].role must be"},
		{"image part", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}`, 400, "only text parts"},
		{"wrong method", "GET", "/v1/completions", ``, 405, "takes POST"},
		{"unknown path", "GET", "/v2/anything", ``, 404, "not an endpoint"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, h.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		decodeErr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		message, _ := field(body, "error", "message").(string)
		if resp.StatusCode != c.status || decodeErr != nil || !strings.Contains(message, c.message) || field(body, "error", "type") == nil {
			t.Errorf("%s: status %d, body %v; want %d and a message containing %q", c.name, resp.StatusCode, body, c.status, c.message)
		}
	}
	if code, body := post(t, h, "/v1/completions", `{"prompt": "x", "max_tokens": 2}`); code != 200 {
		t.Errorf("after the bad requests: status %d, %v", code, body)
	}
}

// TestTypeErrorsNameTheAPIField: a value of the wrong type is named by its
// path in the request, in the API's field names, both in the message and in
// param; never by the Go types that decode it.
func TestTypeErrorsNameTheAPIField(t *testing.T) {
	_, h := goldenServer(t, Options{})
	chat := func(fields string) string { return `{"messages": [{"role": "user", "content": "x"}], ` + fields + `}` }
	cases := []struct{ path, body, param, message string }{
		{"/v1/completions", `{"prompt": "x", "max_tokens": 2.5}`, "max_tokens", "max_tokens: expected an integer, found a JSON number 2.5"},
		{"/v1/chat/completions", chat(`"max_tokens": "ten"`), "max_tokens", "max_tokens: expected an integer, found a JSON string"},
		{"/v1/completions", `{"prompt": "x", "seed": 1.5}`, "seed", "seed: expected an integer, found a JSON number 1.5"},
		{"/v1/completions", `{"prompt": "x", "seed": "x"}`, "seed", "seed: expected an integer, found a JSON string"},
		{"/v1/completions", `{"prompt": "x", "seed": 1e3}`, "seed", "seed: expected an integer, found a JSON number 1e3"},
		{"/v1/completions", `{"prompt": "x", "seed": 99999999999999999999}`, "seed", "seed: 99999999999999999999 is out of range"},
		{"/v1/chat/completions", chat(`"temperature": "hot"`), "temperature", "temperature: expected a number, found a JSON string"},
		{"/v1/chat/completions", chat(`"stream": 1`), "stream", "stream: expected true or false, found a JSON number"},
		{"/v1/completions", `{"prompt": "x", "stream_options": {"include_usage": "yes"}}`, "stream_options.include_usage",
			"stream_options.include_usage: expected true or false, found a JSON string"},
		{"/v1/completions", `{"prompt": "x", "response_format": "json"}`, "response_format", "response_format: expected an object, found a JSON string"},
		{"/v1/chat/completions", `{"messages": 5}`, "messages", "messages: expected an array, found a JSON number"},
		{"/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}, {"role": 5}]}`, "messages[1].role",
			"messages[1].role: expected a string, found a JSON number"},
		{"/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}, 7]}`, "messages[1]", "messages[1]: expected an object, found a JSON number"},
	}
	for _, c := range cases {
		code, body := post(t, h, c.path, c.body)
		message, _ := field(body, "error", "message").(string)
		param, _ := field(body, "error", "param").(string)
		if code != 400 || message != c.message || param != c.param {
			t.Errorf("%s %s: status %d, message %q, param %q; want 400, %q, %q", c.path, c.body, code, message, param, c.message, c.param)
		}
	}
}

// lockedBuffer collects log lines written by the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSuffix(b.buf.String(), "\n"), "\n")
}

// TestRequestLog: with Options.Log, each request is one line when it is done:
// method, path, status, the usage's prompt and completion tokens, and ms.
func TestRequestLog(t *testing.T) {
	var logged lockedBuffer
	s, h := goldenServer(t, Options{Log: log.New(&logged, "", 0)})
	_, whole := post(t, h, "/v1/completions", `{"prompt": "the robot", "max_tokens": 3, "temperature": 0}`)
	stream := events(t, h, "/v1/chat/completions", `{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "temperature": 0,
		"stream": true, "stream_options": {"include_usage": true}}`)
	var chunk map[string]any
	json.Unmarshal([]byte(stream[len(stream)-2]), &chunk) // the usage chunk, before [DONE]
	post(t, h, "/v1/completions", `{"prompt": "x", "max_tokens": "ten"}`)
	long := strings.Repeat("robot ", 80)
	longIDs, _ := s.tok.Encode(long)
	post(t, h, "/v1/completions", `{"prompt": "`+long+`"}`)
	http.Get(h.URL + "/health")
	usage := func(v any) string {
		return fmt.Sprintf("prompt=%v completion=%v", field(v, "usage", "prompt_tokens"), field(v, "usage", "completion_tokens"))
	}
	want := []string{
		"POST /v1/completions 200 " + usage(whole),
		"POST /v1/chat/completions 200 " + usage(chunk),
		"POST /v1/completions 400 prompt=0 completion=0",
		fmt.Sprintf("POST /v1/completions 400 prompt=%d completion=0", 1+len(longIDs)), // BOS and the text: over the context
		"GET /health 200 prompt=0 completion=0",
	}
	waitFor(t, func() bool { return len(logged.lines()) >= len(want) })
	lines := logged.lines()
	for i := range want {
		rest, ok := strings.CutPrefix(lines[i], want[i]+" ")
		if ms, found := strings.CutSuffix(rest, "ms"); !ok || !found || strings.Trim(ms, "0123456789") != "" || ms == "" {
			t.Errorf("log line %d: %q, want %q and the milliseconds", i, lines[i], want[i]+" Nms")
		}
	}
	if len(lines) != len(want) {
		t.Errorf("%d log lines for %d requests: %q", len(lines), len(want), lines)
	}
	if !strings.Contains(want[0], "completion=3") || !strings.Contains(want[1], "completion=2") {
		t.Errorf("the responses' usage: %q, %q", want[0], want[1])
	}
}

// TestBusyServerAnswers429 holds the only session, fills the queue of one, and
// checks the next request gets 429 at once while the queued one completes when
// the session comes back.
func TestBusyServerAnswers429(t *testing.T) {
	s, h := goldenServer(t, Options{Parallel: 1, Queue: 1})
	held := <-s.sessions
	queued := make(chan int)
	go func() {
		code, _ := post(t, h, "/v1/completions", `{"prompt": "x", "max_tokens": 2}`)
		queued <- code
	}()
	waitFor(t, func() bool { return s.Stats().Queued == 1 })
	start := time.Now()
	resp, err := http.Post(h.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt": "x"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || !bytes.Contains(body, []byte("rate_limit_exceeded")) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("with the queue full: status %d, %s", resp.StatusCode, body)
	}
	if wait := time.Since(start); wait > time.Second {
		t.Errorf("the 429 took %v: it must not wait", wait)
	}
	s.sessions <- held
	if code := <-queued; code != 200 {
		t.Errorf("the queued request: status %d", code)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
	}
}

// longServer serves a random model with a 2048-token context whose end-of-text
// tokens can never win a greedy pick, so a greedy request generates until
// max_tokens: time enough to disconnect in the middle.
func longServer(t *testing.T, o Options) (*Server, *httptest.Server) {
	t.Helper()
	_, tok := loadGolden(t) // for its tokenizer
	c := model.Config{VocabSize: tok.VocabSize(), Dim: 256, NLayers: 4, NHeads: 4, NKVHeads: 2, FFNDim: 512,
		ContextLength: 2048, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: false}
	m, err := model.Random(c, gguf.F32, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{tok.EOS, tok.EOT} { // a zero row: logit 0, below the best of 300 others
		clear(m.Output.F32[id*c.Dim : (id+1)*c.Dim])
	}
	if o.Chat == nil && o.NoChat == nil {
		o.Chat = llama3(t, tok)
	}
	s := New(m, tok, o)
	h := httptest.NewServer(s)
	t.Cleanup(h.Close)
	return s, h
}

// TestDisconnectStopsGeneration reads two events of a long stream, cancels the
// request (as the chat page's Stop aborts its fetch), and checks the
// generation stops and /health shows its session free long before max_tokens.
func TestDisconnectStopsGeneration(t *testing.T) {
	for _, c := range []struct{ path, body string }{
		{"/v1/completions", `{"prompt": "x", "max_tokens": 2000, "temperature": 0, "stream": true}`},
		{"/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "max_tokens": 2000, "temperature": 0, "stream": true}`},
	} {
		s, h := longServer(t, Options{Parallel: 1})
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", h.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		reader := bufio.NewReader(resp.Body)
		for events := 0; events < 2; {
			line, err := reader.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", c.path, err)
			}
			if strings.HasPrefix(line, "data: ") {
				events++
			}
		}
		cancel() // hang up
		resp.Body.Close()
		waitFor(t, func() bool { return health(t, h).Active == 0 })
		stoppedAt := s.Stats().GeneratedTokens
		time.Sleep(50 * time.Millisecond)
		if now := s.Stats().GeneratedTokens; now != stoppedAt || stoppedAt >= 2000 {
			t.Errorf("%s: generated %d then %d tokens: generation should stop at the disconnect, far below 2000", c.path, stoppedAt, now)
		}
		if len(s.sessions) != 1 {
			t.Errorf("%s: %d free sessions after the disconnect, want 1", c.path, len(s.sessions))
		}
	}
}

// health is what GET /health answers.
func health(t *testing.T, h *httptest.Server) Stats {
	t.Helper()
	resp, err := http.Get(h.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats Stats
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatalf("/health: %v", err)
	}
	return stats
}

// TestDisconnectStopsWholeResponse: a client that gives up on a non-streaming
// request is noticed between tokens too, with nothing written to notice it by.
func TestDisconnectStopsWholeResponse(t *testing.T) {
	s, h := longServer(t, Options{Parallel: 1})
	client := &http.Client{Timeout: 100 * time.Millisecond}
	_, err := client.Post(h.URL+"/v1/completions", "application/json",
		strings.NewReader(`{"prompt": "x", "max_tokens": 2000, "temperature": 0}`))
	if err == nil {
		t.Fatal("2000 tokens came back within 100 ms: the test needs a slower model")
	}
	waitFor(t, func() bool { return s.Stats().Active == 0 })
	if n := s.Stats().GeneratedTokens; n >= 2000 {
		t.Errorf("generated %d tokens for a client that left", n)
	}
}

// TestStopEndsStreams: Stop (a shutdown past its grace period) ends a running
// stream with an error event and turns new requests away with 503.
func TestStopEndsStreams(t *testing.T) {
	s, h := longServer(t, Options{Parallel: 1})
	done := make(chan []string)
	go func() {
		done <- events(t, h, "/v1/completions", `{"prompt": "x", "max_tokens": 2000, "temperature": 0, "stream": true}`)
	}()
	waitFor(t, func() bool { return s.Stats().GeneratedTokens > 5 })
	s.Stop()
	data := <-done
	if last := data[len(data)-1]; !strings.Contains(last, "shutting down") {
		t.Errorf("the stream's last event is %q, want an error saying the server is shutting down", last)
	}
	if code, body := post(t, h, "/v1/completions", `{"prompt": "x"}`); code != 503 {
		t.Errorf("after Stop: status %d, %v", code, body)
	}
}

// FuzzRequests sends arbitrary bodies to both endpoints: every answer is a 200
// or a 4xx, with a JSON body (an event stream for a streamed 200), never a
// panic or a 5xx.
func FuzzRequests(f *testing.F) {
	for _, seed := range []string{
		`{"prompt": "the robot", "max_tokens": 3}`,
		`{"prompt": ["x"], "max_tokens": 2, "stop": ["a", "b"], "seed": 1, "temperature": 0.5, "top_p": 0.9}`,
		`{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": true}`,
		`{"messages": [{"role": "system", "content": [{"type": "text", "text": "x"}]}], "n": 1}`,
		`{"prompt": "\u0000", "max_tokens": 1e9}`, `[]`, `{"prompt": {}}`, `{"stop": [1]}`,
	} {
		f.Add(seed)
	}
	m, tok := loadGolden(f)
	s := New(m, tok, Options{Name: "gqa", MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(body)))
			if w.Code >= 500 || (w.Code != 200 && w.Code < 400) {
				t.Fatalf("%s %q: status %d %s", path, body, w.Code, w.Body)
			}
			if w.Header().Get("Content-Type") != "text/event-stream" && !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %q: status %d, body is not JSON: %q", path, body, w.Code, w.Body)
			}
		}
	})
}

// TestConcurrentRequestsBatch: four greedy requests at once share decode
// batches, and each gets exactly the text it gets alone; also on one P
// (GOMAXPROCS=1, a one-core container), where a short generation used to run
// all its steps before the next request was read.
func TestConcurrentRequestsBatch(t *testing.T) {
	for _, procs := range []int{runtime.GOMAXPROCS(0), 1} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			testConcurrentRequestsBatch(t)
		})
	}
}

func testConcurrentRequestsBatch(t *testing.T) {
	s, h := longServer(t, Options{Parallel: 4})
	body := func(i int) string {
		return fmt.Sprintf(`{"prompt": "story %d", "max_tokens": 40, "temperature": 0}`, i)
	}
	alone := make([]any, 4)
	for i := range alone {
		_, r := post(t, h, "/v1/completions", body(i))
		alone[i] = field(r, "choices", 0, "text")
	}
	if s.Stats().MeanBatch != 1 {
		t.Fatalf("one request at a time: mean batch %v, want 1", s.Stats().MeanBatch)
	}
	together := make([]any, 4)
	var wg sync.WaitGroup
	for i := range together {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, r := post(t, h, "/v1/completions", body(i))
			together[i] = field(r, "choices", 0, "text")
		}()
	}
	wg.Wait()
	for i := range alone {
		if together[i] != alone[i] || alone[i] == "" {
			t.Errorf("request %d: %q together, %q alone", i, together[i], alone[i])
		}
	}
	if mean := s.Stats().MeanBatch; mean <= 1.05 {
		t.Errorf("mean batch %.2f after four concurrent requests: their steps did not batch", mean)
	}
}
