package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"gollm/goengine/engine"
	"gollm/goengine/sampler"
)

func generate(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("generate", stderr)
	modelPath := fs.String("model", "", "model file (.gguf)")
	prompt := fs.String("prompt", "", "text to continue")
	promptFile := promptFileFlag(fs)
	maxTokens := fs.Int("max-tokens", 256, "most tokens to generate (stops earlier at end-of-text or the context end)")
	temperature := fs.Float64("temperature", 0.8, "sampling temperature; 0 = greedy")
	topK := fs.Int("top-k", 0, "sample from the k most likely tokens; 0 = all")
	topP := fs.Float64("top-p", 0.95, "sample from the smallest set of tokens whose probability reaches p; 1 = all")
	threads := threadsFlag(fs)
	seed := fs.Uint64("seed", 0, "random seed (the same seed gives the same text); without it, a fresh one, printed on stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return usagef("--model is required")
	}
	if *maxTokens <= 0 {
		return usagef("--max-tokens must be positive, found %d", *maxTokens)
	}
	if given(fs, "prompt-file") {
		if given(fs, "prompt") {
			return usagef("give --prompt or --prompt-file, not both")
		}
		text, err := readPromptFile(*promptFile, stdin)
		if err != nil {
			return err
		}
		*prompt = text
	}
	freshSeed(fs, seed, *temperature, stderr)
	pick, err := sampler.New(*temperature, *topK, *topP, *seed)
	if err != nil {
		return usageError{err}
	}

	loaded, err := loadLanguageModel(*modelPath, *threads)
	if err != nil {
		return err
	}
	defer loaded.file.Close()
	m, tok := loaded.model, loaded.tokenizer
	textIDs, err := tok.Encode(*prompt)
	if err != nil {
		return usagef("--prompt: %v", err)
	}
	ids := tok.WithBOS(textIDs) // llama-bpe prompts start with <|begin_of_text|>; SmolLM2's with no BOS
	contextLength := m.Config.ContextLength
	if len(ids) >= contextLength {
		return fmt.Errorf("the prompt is %d tokens but the model's context is %d: it must be shorter to leave room for output", len(ids), contextLength)
	}

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	session := engine.NewSession(m)
	start := time.Now()
	logits, err := session.Prefill(ids)
	if err != nil {
		return err
	}
	prefillTime := time.Since(start)

	fmt.Fprint(out, *prompt)
	start = time.Now()
	r, err := engine.Generate(context.Background(), session, tok, logits, pick, engine.Options{MaxTokens: *maxTokens}, func(piece string) error {
		fmt.Fprint(out, piece)
		return out.Flush() // stream: a token is visible as soon as it exists
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	out.Flush()
	decodeTime := time.Since(start)
	switch r.Finish {
	case engine.EndOfText:
		fmt.Fprintln(stderr, "stopped: end of text")
	case engine.ContextFull:
		fmt.Fprintf(stderr, "stopped: reached the context length (%d tokens)\n", contextLength)
	}
	fmt.Fprintf(stderr, "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s\n",
		len(ids), rate(len(ids), prefillTime), r.Generated, rate(r.Generated, decodeTime))
	return nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
