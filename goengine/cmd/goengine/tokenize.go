package main

import (
	"fmt"
	"io"
	"strings"

	"gollm/goengine/gguf"
	"gollm/goengine/tokenizer"
)

// tokenize prints the ids of a text. It reads only the tokenizer keys, so it also
// works on a vocabulary-only GGUF file with no weights.
func tokenize(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tokenize", stderr)
	modelPath := fs.String("model", "", "model or vocabulary file (.gguf)")
	bos := fs.Bool("bos", false, "start with the <|begin_of_text|> id")
	// The text is the one positional argument: parse flags around it.
	var text []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		text = append(text, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *modelPath == "" {
		return usagef("--model is required")
	}
	if len(text) != 1 {
		return usagef("expected one text argument, found %d (quote the text)", len(text))
	}
	f, err := gguf.Open(*modelPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return err
	}
	ids, err := tok.Encode(text[0])
	if err != nil {
		return usageError{err}
	}
	if *bos {
		ids = append([]int{tok.BOS}, ids...)
	}
	words := make([]string, len(ids))
	for i, id := range ids {
		words[i] = fmt.Sprint(id)
	}
	fmt.Fprintln(stdout, strings.Join(words, " "))
	return nil
}
