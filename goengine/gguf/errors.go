package gguf

import "fmt"

// FormatError reports a file that is not a valid GGUF container, or a
// metadata key or tensor that is missing or not what the caller asked for.
//
// Its message has the form "gguf: <path>: <where>: <msg>", where Where names
// the part of the file involved: "header", `key "llama.block_count"`,
// `tensor "blk.0.attn_q.weight"`, and so on; Msg says what was expected and
// what was found.
type FormatError struct {
	Path  string // the file's path as given to Open or Parse
	Where string // the part of the file: "header", `key "…"`, `tensor "…"`, …
	Msg   string // what was expected and what was found
	Err   error  // the underlying error, if any
}

// Error returns "gguf: <path>: <where>: <msg>".
func (e *FormatError) Error() string {
	s := "gguf: " + e.Path + ": "
	if e.Where != "" {
		s += e.Where + ": "
	}
	return s + e.Msg
}

// Unwrap returns the underlying error, if any.
func (e *FormatError) Unwrap() error { return e.Err }

func errorf(path, where, format string, args ...any) error {
	return &FormatError{Path: path, Where: where, Msg: fmt.Sprintf(format, args...)}
}

func keyWhere(key string) string       { return fmt.Sprintf("key %q", key) }
func tensorWhere(name string) string   { return fmt.Sprintf("tensor %q", name) }
func kvIndexWhere(i uint64) string     { return fmt.Sprintf("metadata key/value %d", i) }
func tensorIndexWhere(i uint64) string { return fmt.Sprintf("tensor info %d", i) }
