package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"gollm/goengine/engine"
	"gollm/goengine/sampler"
	"gollm/goengine/tokenizer"
)

// chat holds a conversation with the model in the chat format of
// spec/tokenizer.md §5, its history kept in one KV cache (engine.Conversation).
// On a terminal it prompts with "> " on stderr and streams each reply to
// stdout; otherwise each input line is one user message and each reply is
// written to stdout followed by one newline, so that stdout holds only replies.
// A line ending in a backslash continues in the next, with a newline between.
func chat(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("chat", stderr)
	modelPath := fs.String("model", "", "model file (.gguf)")
	system := fs.String("system", "", "system message, kept for the whole chat")
	maxTokens := fs.Int("max-tokens", 256, "most tokens per reply; a reply cut short stays in the history as it stands")
	temperature := fs.Float64("temperature", 0.8, "sampling temperature; 0 = greedy")
	topP := fs.Float64("top-p", 0.95, "sample from the smallest set of tokens whose probability reaches p; 1 = all")
	seed := fs.Uint64("seed", 0, "random seed (the same seed and messages give the same replies); without it, a fresh one, printed on stderr")
	threads := threadsFlag(fs)
	chatFormat := chatFormatFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return usagef("--model is required")
	}
	if *maxTokens <= 0 {
		return usagef("--max-tokens must be positive, found %d", *maxTokens)
	}
	if i := invalidUTF8([]byte(*system)); i >= 0 {
		return usagef("--system: the text is not valid UTF-8 (byte %d is %#02x)", i, (*system)[i])
	}
	freshSeed(fs, seed, *temperature, stderr)
	pick, err := sampler.New(*temperature, 0, *topP, *seed)
	if err != nil {
		return usageError{err}
	}
	loaded, err := loadLanguageModel(*modelPath, *threads)
	if err != nil {
		return err
	}
	defer loaded.file.Close()
	m := loaded.model
	chat, err := tokenizer.ChatFromGGUF(loaded.file, loaded.tokenizer, *chatFormat)
	if err != nil {
		return err
	}
	contextLength := m.Config.ContextLength
	if start, err := chat.Prompt(systemMessage(*system)); err != nil {
		return fmt.Errorf("%s: %w", *modelPath, err)
	} else if len(start) >= contextLength {
		return usagef("--system: with the chat format it is %d tokens, but the model's context is %d", len(start), contextLength)
	}

	conv := engine.NewConversation(m, chat, *system)
	conv.Reserve = min(*maxTokens, contextLength/2) // a long --max-tokens must not crowd out the whole history
	c := &chatter{conv: conv, pick: pick, opts: engine.Options{MaxTokens: *maxTokens},
		out: bufio.NewWriter(stdout), stderr: stderr, interactive: isTerminal(stdin)}
	if c.interactive {
		fmt.Fprintf(stderr, "chatting with %s (context %d tokens, chat format %s): /reset starts over, /exit or Ctrl-D ends, Ctrl-C stops a reply\n",
			*modelPath, contextLength, chat.Format.Name)
	}
	return c.run(bufio.NewReader(stdin))
}

// chatter is the chat command's loop: it reads lines, runs commands and turns,
// and writes replies and notices.
type chatter struct {
	conv        *engine.Conversation
	pick        *sampler.Sampler
	opts        engine.Options
	out         *bufio.Writer // the replies
	stderr      io.Writer     // the prompt, notices and errors
	interactive bool

	line, failed int
	writeErr     error // stdout failed: the chat cannot go on
}

// run reads lines until /exit or the end of the input. Off a terminal, lines
// that failed make the command fail at the end.
func (c *chatter) run(in *bufio.Reader) error {
	for {
		if c.interactive {
			fmt.Fprint(c.stderr, "> ")
		}
		text, err := in.ReadString('\n')
		if err != nil && err != io.EOF {
			return err
		}
		if text == "" && err == io.EOF {
			if c.interactive {
				fmt.Fprintln(c.stderr) // Ctrl-D left the cursor after the prompt
			}
			break
		}
		c.line++
		text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
		// A line that ends with a backslash goes on in the next one, as in llama.cpp's
		// chat: the backslash becomes a newline, so a message may hold paragraphs.
		for strings.HasSuffix(text, "\\") && err == nil {
			var next string
			next, err = in.ReadString('\n')
			if err != nil && err != io.EOF {
				return err
			}
			c.line++
			text = strings.TrimSuffix(text, "\\") + "\n" + strings.TrimSuffix(strings.TrimSuffix(next, "\n"), "\r")
		}
		word := strings.TrimSpace(text)
		if word == "/exit" {
			break
		}
		switch {
		case word == "": // a blank line sends nothing
		case word == "/reset":
			c.conv.Reset()
			if c.interactive {
				fmt.Fprintln(c.stderr, "(a new conversation)")
			}
		case strings.HasPrefix(word, "/") && !strings.ContainsAny(word, " \t"):
			c.fail(fmt.Errorf("unknown command %s: the commands are /reset and /exit", word))
		default:
			if err := c.turn(text); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
	}
	if !c.interactive && c.failed > 0 {
		return fmt.Errorf("%s (see above)", plural(c.failed, "line failed", "lines failed"))
	}
	return nil
}

// turn sends one message and writes the reply and any notice about it. An
// error for the message is reported and the chat goes on; the error returned
// ends the chat (stdout failed).
func (c *chatter) turn(text string) error {
	if i := invalidUTF8([]byte(text)); i >= 0 {
		c.fail(fmt.Errorf("the message is not valid UTF-8 (byte %d is %#02x)", i, text[i]))
		return nil
	}
	ctx := context.Background()
	if c.interactive { // Ctrl-C stops the reply; at the prompt it ends the command as usual
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
	}
	emitted := false
	turn, err := c.conv.Send(ctx, text, c.pick, c.opts, func(piece string) error {
		emitted = true
		if _, err := c.out.WriteString(piece); err != nil {
			c.writeErr = err
			return err
		}
		if err := c.out.Flush(); err != nil { // stream: a token is visible as soon as it exists
			c.writeErr = err
			return err
		}
		return nil
	})
	if c.writeErr != nil {
		return c.writeErr
	}
	interrupted := err != nil && ctx.Err() != nil
	if err == nil || interrupted || emitted {
		c.out.WriteString("\n") // the reply's line ends, whatever ended the reply
		if err := c.out.Flush(); err != nil {
			return err
		}
	}
	if turn.Dropped > 0 {
		kept := ""
		if c.conv.System != "" {
			kept = ", the system message kept"
		}
		fmt.Fprintf(c.stderr, "(the context was full: the oldest %s dropped before this reply%s)\n",
			plural(turn.Dropped, "turn was", "turns were"), kept)
	}
	switch {
	case interrupted:
		fmt.Fprintln(c.stderr, "(interrupted: the reply so far is kept)")
	case err != nil:
		c.fail(err)
	case turn.Finish == engine.MaxTokens:
		fmt.Fprintf(c.stderr, "(the reply was cut at --max-tokens %d)\n", c.opts.MaxTokens)
	case turn.Finish == engine.ContextFull:
		fmt.Fprintln(c.stderr, "(the reply filled the context: the oldest turns will be dropped to make room)")
	}
	return nil
}

// fail reports an error for the current line; the chat goes on.
func (c *chatter) fail(err error) {
	c.failed++
	if c.interactive {
		fmt.Fprintf(c.stderr, "goengine chat: %v\n", err)
		return
	}
	fmt.Fprintf(c.stderr, "goengine chat: line %d: %v\n", c.line, err)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func systemMessage(system string) []tokenizer.Message {
	if system == "" {
		return nil
	}
	return []tokenizer.Message{{Role: "system", Content: system}}
}

// isTerminal reports whether r is a terminal (a character device), where the
// chat is interactive.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
