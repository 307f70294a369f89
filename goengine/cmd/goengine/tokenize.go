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
func tokenize(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("tokenize", stderr)
	modelPath := fs.String("model", "", "model or vocabulary file (.gguf)")
	bos := fs.Bool("bos", false, "start with the BOS id, as the model's prompts do (when its vocabulary asks for one: add_bos_token)")
	textFile := promptFileFlag(fs)
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
	if given(fs, "prompt-file") {
		if len(text) > 0 {
			return usagef("give the text as an argument or --prompt-file, not both")
		}
		t, err := readPromptFile(*textFile, stdin)
		if err != nil {
			return err
		}
		text = []string{t}
	}
	if len(text) != 1 {
		return usagef("expected one text argument, found %d (quote the text, or use --prompt-file)", len(text))
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
		ids = tok.WithBOS(ids)
	}
	words := make([]string, len(ids))
	for i, id := range ids {
		words[i] = fmt.Sprint(id)
	}
	fmt.Fprintln(stdout, strings.Join(words, " "))
	return nil
}
