// Command goengine runs gollm models (GGUF files in the profile of spec/format.md)
// on the CPU.
//
//	goengine generate --model M.gguf (--prompt "Once upon a time" | --prompt-file FILE) [--max-tokens N]
//	                  [--temperature T] [--top-k K] [--top-p P] [--seed S]
//	goengine chat --model M.gguf [--system TEXT] [--max-tokens N] [--temperature T] [--top-p P] [--seed S] [--threads N]
//	goengine classify --model M.gguf (--text T | --jsonl FILE) [--threads N]
//	goengine info --model M.gguf
//	goengine tokenize --model M.gguf [--bos] ("text" | --prompt-file FILE)
//	goengine logits --model M.gguf --tokens "1 50 60"
//	goengine serve --model M.gguf [--addr 127.0.0.1:8080] [--parallel N] [--queue Q] [--threads N]
//	goengine bench (--model M.gguf | --config CONFIG.json [--dtype f32|f16|q8_0]) [--prompt-tokens 512] [--gen-tokens 128] [--threads N] [--sessions N]
//
// A classifier file (spec/format.md §6.3) runs only with classify; generate,
// chat and serve refuse it.
//
// GOENGINE_KERNELS=avx512|avx2|generic caps the kernel level; any other value is
// an error before any command runs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"unicode/utf8"

	"gollm/goengine/tensor"
)

const usage = `usage: goengine <command> [flags]

commands:
  generate   generate text from a prompt, streaming it to stdout
  chat       chat with the model: on a terminal, or one message per stdin line
  classify   label texts with a classifier model, one JSON line each
  info       print a model's config, parameter count, tensors and tokenizer
  tokenize   print the token ids of a text (needs only the tokenizer keys)
  logits     print the logits of every position for given token ids, as JSON
  serve      serve the model over an OpenAI-compatible HTTP API
  bench      measure load, prefill and decode speed against memory bandwidth

run 'goengine <command> -h' for the flags of a command
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code (0 ok, 1 failure,
// 2 bad usage) so that tests can call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err := tensor.UseKernelsFromEnv(); err != nil { // a typo must not run other kernels than asked
		fmt.Fprintf(stderr, "goengine: %v\n", err)
		return 2
	}
	var err error
	switch args[0] {
	case "generate":
		err = generate(args[1:], stdin, stdout, stderr)
	case "info":
		err = info(args[1:], stdout, stderr)
	case "tokenize":
		err = tokenize(args[1:], stdin, stdout, stderr)
	case "logits":
		err = logits(args[1:], stdout, stderr)
	case "chat":
		err = chat(args[1:], stdin, stdout, stderr)
	case "classify":
		err = classify(args[1:], stdin, stdout, stderr)
	case "serve":
		err = serveCmd(args[1:], stdout, stderr)
	case "bench":
		err = bench(args[1:], stdin, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "goengine: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var usageErr usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "goengine %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "goengine %s: %v\n", args[0], err)
		return 1
	}
}

// usageError is a mistake in the command line rather than in the model or the run.
type usageError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// newFlags makes a flag set that reports errors to the caller instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("goengine "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses the flags and rejects stray arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (flags come as --name value)", fs.Arg(0))
	}
	return nil
}

// promptFileFlag adds --prompt-file, the prompt text read from a file.
func promptFileFlag(fs *flag.FlagSet) *string {
	return fs.String("prompt-file", "", "read the text from FILE (- for stdin); one final newline is dropped")
}

// readPromptFile reads --prompt-file FILE, "-" for stdin: UTF-8 text, less one
// final newline, which editors and echo leave and which would otherwise be
// the prompt's last token.
func readPromptFile(file string, stdin io.Reader) (string, error) {
	var data []byte
	var err error
	switch file {
	case "":
		return "", usagef("--prompt-file needs a file name, or - for stdin")
	case "-":
		file = "(stdin)"
		data, err = io.ReadAll(stdin)
	default:
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return "", fmt.Errorf("--prompt-file: %w", err)
	}
	if i := invalidUTF8(data); i >= 0 {
		return "", usagef("--prompt-file %s: the text is not valid UTF-8 (byte %d is %#02x)", file, i, data[i])
	}
	text := string(data)
	if t, ok := strings.CutSuffix(text, "\n"); ok {
		text = strings.TrimSuffix(t, "\r")
	}
	return text, nil
}

// invalidUTF8 is the index of the first byte of data that is not part of valid
// UTF-8, or -1 if there is none.
func invalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// given reports whether the command line set the flag name.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// freshSeed draws a seed when --seed was not given and, if the output is
// sampled (temperature > 0), prints it on stderr so that the run can be repeated.
func freshSeed(fs *flag.FlagSet, seed *uint64, temperature float64, stderr io.Writer) {
	if given(fs, "seed") {
		return
	}
	*seed = rand.Uint64()
	if temperature > 0 { // greedy output is the same for every seed
		fmt.Fprintf(stderr, "seed: %d (pass --seed %d to repeat)\n", *seed, *seed)
	}
}

// chatFormatFlag adds --chat-format, which overrides the format detected from
// the file's tokenizer.chat_template (tokenizer.ChatFromGGUF).
func chatFormatFlag(fs *flag.FlagSet) *string {
	return fs.String("chat-format", "", "chat format instead of the one detected from the file's template: chatml, gemma, llama3, phi3, zephyr, llama2, llama2-sys, llama2-sys-bos, llama2-sys-strip, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7 or mistral-v7-tekken")
}

// threadsFlag adds --threads, the goroutines for the matrix products; call
// setThreads with it before loading the model, whose pool takes that size.
func threadsFlag(fs *flag.FlagSet) *int {
	return fs.Int("threads", runtime.GOMAXPROCS(0), "goroutines for the matrix products (fewer if other work shares the cores)")
}

// loadLanguageModel sets --threads, then loads the model, whose pool takes
// that size: the order generate, chat and serve all need; and it refuses a
// classifier (spec/format.md §6.3), which is no language model to sample from.
func loadLanguageModel(path string, threads int) (*loaded, error) {
	if err := setThreads(threads); err != nil {
		return nil, err
	}
	l, err := loadModel(path)
	if err == nil && l.model.Labels != nil {
		l.file.Close()
		return nil, fmt.Errorf("%s: a classifier (labels %s), not a language model: use goengine classify",
			path, strings.Join(l.model.Labels, ", "))
	}
	return l, err
}

func setThreads(n int) error {
	if n < 1 {
		return usagef("--threads must be at least 1, found %d", n)
	}
	runtime.GOMAXPROCS(n)
	return nil
}
