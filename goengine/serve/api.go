package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"gollm/goengine/tokenizer"
)

// The request and response bodies of the OpenAI API subset we serve. Field names
// and shapes follow OpenAI's so that its clients work unchanged; fields we do
// not know are ignored, as OpenAI's own server ignores them, but a known option
// we cannot honour (n > 1, penalties, logprobs) is an error rather than a
// silently different answer.

// A request body is decoded twice: into samplingRequest, the fields both
// endpoints share, and into the endpoint's own fields. The types are not
// embedded in one another because encoding/json names a mistyped field of an
// embedded struct with the Go type's name ("samplingRequest.max_tokens"), and
// a client knows only the API's field names.

// samplingRequest holds the fields both endpoints share.
type samplingRequest struct {
	Model            string          `json:"model"`
	MaxTokens        *int            `json:"max_tokens"`
	MaxCompletion    *int            `json:"max_completion_tokens"` // the chat API's newer name
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	Seed             *int64          `json:"seed"`
	Stop             json.RawMessage `json:"stop"`
	Stream           bool            `json:"stream"`
	StreamOptions    *streamOptions  `json:"stream_options"`
	N                *int            `json:"n"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	Logprobs         json.RawMessage `json:"logprobs"`
	// Options we cannot honour: set to anything but their neutral value, an error.
	Tools          json.RawMessage `json:"tools"`
	Functions      json.RawMessage `json:"functions"`
	ResponseFormat *struct {
		Type string `json:"type"`
	} `json:"response_format"`
	LogitBias json.RawMessage `json:"logit_bias"`
	Echo      bool            `json:"echo"`
	BestOf    *int            `json:"best_of"`
	Suffix    *string         `json:"suffix"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type completionRequest struct {
	Prompt json.RawMessage `json:"prompt"`
}

type chatRequest struct {
	Messages []json.RawMessage `json:"messages"` // each a chatMessage, decoded with its index for errors
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // a string, or an array of {"type": "text", "text": ...} parts
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"` // "text_completion"
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatChoice struct {
	Index        int        `json:"index"`
	Message      *chatDelta `json:"message,omitempty"` // a whole response
	Delta        *chatDelta `json:"delta,omitempty"`   // a stream chunk
	Logprobs     any        `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"` // "chat.completion" or "chat.completion.chunk"
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
}

// apiError is an error in OpenAI's shape, with the HTTP status to send.
type apiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func invalid(param, format string, args ...any) *apiError {
	e := &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Type: "invalid_request_error"}
	if param != "" {
		e.Param = &param
	}
	return e
}

func withCode(e *apiError, code string) *apiError {
	e.Code = &code
	return e
}

// decodeBody reads a JSON request body of at most limit bytes into each of
// targets, with an error that names the problem: too large, not UTF-8, not
// JSON, a field of the wrong type.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, targets ...any) *apiError {
	body, err := readAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
			Message: fmt.Sprintf("the request body is over the limit of %d bytes", limit)}
	case err != nil:
		return invalid("", "reading the request body: %v", err)
	case !utf8.Valid(body):
		// encoding/json would silently turn invalid bytes into U+FFFD.
		return invalid("", "the request body is not valid UTF-8")
	}
	for _, v := range targets {
		if e := decodeJSON(body, v, ""); e != nil {
			return e
		}
	}
	return nil
}

// decodeJSON decodes data into v. A value of the wrong type is an error that
// names the field by its JSON path: path (the place of data in the request,
// "" for the body, "messages[2]") and the field in data, which encoding/json
// spells with the JSON names ("stream_options.include_usage").
func decodeJSON(data []byte, v any, path string) *apiError {
	err := json.Unmarshal(data, v)
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if path != "" {
			field = strings.TrimSuffix(path+"."+field, ".")
		}
		want := jsonKind(typeErr.Type)
		if field == "" {
			return invalid("", "the request body must be %s, found a JSON %s", want, typeErr.Value)
		}
		if number, ok := strings.CutPrefix(typeErr.Value, "number "); ok && want == "an integer" && isInteger(number) {
			return invalid(field, "%s: %s is out of range", field, number)
		}
		return invalid(field, "%s: expected %s, found a JSON %s", field, want, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return invalid("", "the request body is not valid JSON: %v (at byte %d)", syntaxErr, syntaxErr.Offset)
	}
	return invalid(path, "the request body is not a valid request: %v", err)
}

// isInteger reports whether a JSON number is written as an integer: digits
// with an optional minus sign, no fraction or exponent.
func isInteger(number string) bool {
	digits := strings.TrimPrefix(number, "-")
	return digits != "" && strings.Trim(digits, "0123456789") == ""
}

func readAll(r interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// jsonKind names a Go type as the JSON type a client should send.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// sampling is what a request asks of the generation loop.
type sampling struct {
	maxTokens   int
	temperature float64
	topP        float64
	seed        uint64
	seeded      bool
	stop        []string
}

// validate checks the shared fields against the server's model. OpenAI's
// defaults: temperature 1, top_p 1, and max_tokens 16 for completions or the
// rest of the context for chat.
func (q *samplingRequest) validate(s *Server, defaultMax int) (sampling, *apiError) {
	out := sampling{maxTokens: defaultMax, temperature: 1, topP: 1}
	if q.Model != "" && q.Model != s.name {
		return out, withCode(&apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("the model %q does not exist: this server has %q", q.Model, s.name)}, "model_not_found")
	}
	max := q.MaxTokens
	if max == nil {
		max = q.MaxCompletion
	}
	if max != nil {
		if *max < 1 || *max > s.context {
			return out, invalid("max_tokens", "max_tokens must be between 1 and the context length %d, found %d", s.context, *max)
		}
		out.maxTokens = *max
	}
	if t := q.Temperature; t != nil {
		if math.IsNaN(*t) || *t < 0 || *t > 2 {
			return out, invalid("temperature", "temperature must be between 0 and 2, found %v", *t)
		}
		out.temperature = *t
	}
	if p := q.TopP; p != nil {
		if math.IsNaN(*p) || *p <= 0 || *p > 1 {
			return out, invalid("top_p", "top_p must be in (0, 1], found %v", *p)
		}
		out.topP = *p
	}
	if q.Seed != nil {
		out.seed, out.seeded = uint64(*q.Seed), true
	}
	if q.N != nil && *q.N != 1 {
		return out, invalid("n", "n must be 1: this server generates one choice per request")
	}
	for name, v := range map[string]*float64{"presence_penalty": q.PresencePenalty, "frequency_penalty": q.FrequencyPenalty} {
		if v != nil && *v != 0 {
			return out, invalid(name, "%s is not supported (only 0)", name)
		}
	}
	if len(q.Logprobs) > 0 && string(q.Logprobs) != "null" && string(q.Logprobs) != "false" {
		return out, invalid("logprobs", "logprobs are not supported")
	}
	for name, raw := range map[string]json.RawMessage{"tools": q.Tools, "functions": q.Functions, "logit_bias": q.LogitBias} {
		switch string(raw) {
		case "", "null", "[]", "{}":
		default:
			return out, invalid(name, "%s is not supported", name)
		}
	}
	if f := q.ResponseFormat; f != nil && f.Type != "" && f.Type != "text" {
		return out, invalid("response_format", "response_format %q is not supported (only text)", f.Type)
	}
	if q.Echo {
		return out, invalid("echo", "echo is not supported")
	}
	if q.BestOf != nil && *q.BestOf != 1 {
		return out, invalid("best_of", "best_of must be 1")
	}
	if q.Suffix != nil && *q.Suffix != "" {
		return out, invalid("suffix", "suffix (insertion) is not supported")
	}
	stop, err := stopStrings(q.Stop)
	if err != nil {
		return out, err
	}
	out.stop = stop
	return out, nil
}

// stopStrings reads "stop": absent, null, a string, or an array of up to 4.
func stopStrings(raw json.RawMessage) ([]string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		raw = json.RawMessage(`[` + string(raw) + `]`)
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("stop", "stop must be a string or an array of strings")
	}
	if len(list) > 4 {
		return nil, invalid("stop", "stop takes at most 4 sequences, found %d", len(list))
	}
	for _, s := range list {
		if s == "" {
			return nil, invalid("stop", "stop sequences must not be empty")
		}
	}
	return list, nil
}

// promptTokens reads a completion's "prompt": a string, an array of one
// string, or the prompt's token ids. A text prompt is encoded after BOS, as
// llama-bpe prompts start; token ids are the whole prompt, as given.
func (s *Server) promptTokens(raw json.RawMessage) ([]int, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, invalid("prompt", "prompt is required")
	}
	var text string
	var list []string
	var ids []int
	switch {
	case json.Unmarshal(raw, &text) == nil:
	case json.Unmarshal(raw, &list) == nil && len(list) == 1:
		text = list[0]
	case json.Unmarshal(raw, &ids) == nil && len(ids) > 0:
		for _, id := range ids {
			if id < 0 || id >= s.tok.VocabSize() {
				return nil, invalid("prompt", "prompt: token id %d is outside the vocabulary (0..%d)", id, s.tok.VocabSize()-1)
			}
		}
		return ids, nil
	default:
		return nil, invalid("prompt", "prompt must be a string, an array of one string, or an array of token ids")
	}
	encoded, err := s.tok.Encode(text)
	if err != nil {
		return nil, invalid("prompt", "prompt: %v", err)
	}
	return s.tok.WithBOS(encoded), nil
}

// chatMessages reads the messages of a chat request.
func chatMessages(in []json.RawMessage) ([]tokenizer.Message, *apiError) {
	if len(in) == 0 {
		return nil, invalid("messages", "messages must be a non-empty array")
	}
	out := make([]tokenizer.Message, len(in))
	for i, raw := range in {
		param := fmt.Sprintf("messages[%d]", i)
		var m chatMessage
		if e := decodeJSON(raw, &m, param); e != nil {
			return nil, e
		}
		role := m.Role
		if role == "developer" { // OpenAI's newer name for the system role
			role = "system"
		}
		switch role {
		case "system", "user", "assistant":
		default:
			return nil, invalid(param+".role", "%s.role must be system, user or assistant, found %q", param, m.Role)
		}
		text, err := messageText(m.Content)
		if err != nil {
			return nil, invalid(param+".content", "%s.content: %s", param, err)
		}
		out[i] = tokenizer.Message{Role: role, Content: text}
	}
	return out, nil
}

// messageText reads a message's content: a string or an array of text parts.
func messageText(raw json.RawMessage) (string, error) {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return text, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("expected a string or an array of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return "", fmt.Errorf("only text parts are supported, found type %q", p.Type)
		}
		b.WriteString(*p.Text)
	}
	return b.String(), nil
}
