package main

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"

	"gollm/goengine/engine"
)

// logits prints the logits of every position for the given token ids as JSON
// rows: a tool for comparing engines on the same file (the export tests use it).
func logits(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logits", stderr)
	modelPath := fs.String("model", "", "model file (.gguf)")
	tokenList := fs.String("tokens", "", `token ids separated by spaces, e.g. "1 50 60"`)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return usagef("--model is required")
	}
	var ids []int
	for _, field := range strings.Fields(*tokenList) {
		id, err := strconv.Atoi(field)
		if err != nil {
			return usagef("--tokens: %q is not a token id", field)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return usagef("--tokens: at least one token id is needed")
	}
	l, err := loadModel(*modelPath)
	if err != nil {
		return err
	}
	defer l.file.Close()
	rows, err := engine.Logits(l.model, ids)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(rows)
}
