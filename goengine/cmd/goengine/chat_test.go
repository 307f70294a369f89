package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gollm/goengine/engine"
	"gollm/goengine/gguf"
	"gollm/goengine/sampler"
	"gollm/goengine/tokenizer"
)

// longerGolden writes goldens/gqa.gguf with llama.context_length raised from
// 64 to contextLength: the weights do not depend on it (RoPE's table is made
// at load), and a two-turn chat fits without dropping a turn.
func longerGolden(t *testing.T, contextLength uint32) string {
	t.Helper()
	data, err := os.ReadFile(goldenModel)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("llama.context_length")
	i := bytes.Index(data, key) + len(key) // then the value's type (u32) and the value
	if i < len(key) || binary.LittleEndian.Uint32(data[i:]) != uint32(gguf.UINT32) || binary.LittleEndian.Uint32(data[i+4:]) != 64 {
		t.Fatalf("%s: llama.context_length is not a UINT32 64", goldenModel)
	}
	binary.LittleEndian.PutUint32(data[i+4:], contextLength)
	path := filepath.Join(t.TempDir(), "gqa-long.gguf")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// greedyReply is the reply to messages computed apart from the chat command:
// Chat.Prompt of the whole history, greedily decoded in a fresh session up to
// maxTokens tokens, <|eot_id|>, <|end_of_text|> or the context's end, with
// control tokens printing nothing.
func greedyReply(t *testing.T, path string, messages []tokenizer.Message, maxTokens int) string {
	t.Helper()
	l, err := loadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.file.Close()
	tok := l.tokenizer
	chat, err := tokenizer.ChatFromGGUF(l.file, tok, "")
	if err != nil {
		t.Fatal(err)
	}
	prompt, err := chat.Prompt(messages)
	if err != nil {
		t.Fatal(err)
	}
	sess := engine.NewSession(l.model)
	logits, err := sess.Prefill(prompt)
	if err != nil {
		t.Fatal(err)
	}
	pick, _ := sampler.New(0, 0, 1, 0)
	var printed []int
	for n := 0; n < maxTokens; n++ {
		id, _ := pick.Sample(logits)
		if tok.IsEndOfGeneration(id) {
			break
		}
		if !tok.IsControl(id) {
			printed = append(printed, id)
		}
		if sess.Room() == 0 {
			break
		}
		if logits, err = sess.DecodeStep(id); err != nil {
			t.Fatal(err)
		}
	}
	text, _ := tok.Decode(printed)
	return text
}

func user(text string) tokenizer.Message { return tokenizer.Message{Role: "user", Content: text} }
func assistant(text string) tokenizer.Message {
	return tokenizer.Message{Role: "assistant", Content: text}
}

// TestChatRepliesToTheWholeHistory: with stdin not a terminal, each line is a
// message and each reply one line of stdout, the greedy reply to Chat.Prompt of
// the whole history so far (system message included).
func TestChatRepliesToTheWholeHistory(t *testing.T) {
	model := longerGolden(t, 256)
	for _, system := range []string{"", "be brief"} {
		args := []string{"chat", "--model", model, "--temperature", "0", "--max-tokens", "8"}
		var history []tokenizer.Message
		if system != "" {
			args = append(args, "--system", system)
			history = append(history, tokenizer.Message{Role: "system", Content: system})
		}
		code, out, errOut := runCLIWithInput("hi\nhow are you\n", args...)
		if code != 0 {
			t.Fatalf("--system %q: exit %d: %s", system, code, errOut)
		}
		history = append(history, user("hi"))
		first := greedyReply(t, model, history, 8)
		history = append(history, assistant(first), user("how are you"))
		second := greedyReply(t, model, history, 8)
		if want := first + "\n" + second + "\n"; out != want {
			t.Errorf("--system %q: stdout %q, want the greedy replies %q", system, out, want)
		}
		if strings.Contains(errOut, "context was full") || strings.Contains(errOut, "> ") {
			t.Errorf("--system %q: stderr %q: no turn should be dropped, and no prompt shown off a terminal", system, errOut)
		}
	}
}

// TestChatBackslashContinuesAMessage: a line ending in a backslash goes on in
// the next, so one message may hold a story, a blank line and a question.
func TestChatBackslashContinuesAMessage(t *testing.T) {
	model := longerGolden(t, 256)
	args := []string{"chat", "--model", model, "--temperature", "0", "--max-tokens", "8"}
	code, out, errOut := runCLIWithInput("a story\\\n\\\nwho?\nnext\n", args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	history := []tokenizer.Message{user("a story\n\nwho?")}
	first := greedyReply(t, model, history, 8)
	history = append(history, assistant(first), user("next"))
	if want := first + "\n" + greedyReply(t, model, history, 8) + "\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
}

// TestChatResetAndExit: /reset starts over with the same system message, /exit
// ends the chat, and blank lines are skipped.
func TestChatResetAndExit(t *testing.T) {
	model := longerGolden(t, 256)
	args := []string{"chat", "--model", model, "--temperature", "0", "--max-tokens", "6", "--system", "be kind"}
	code, out, errOut := runCLIWithInput("hi\n\nthanks\n/reset\nhi\n/exit\nnever sent\n", args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	system := tokenizer.Message{Role: "system", Content: "be kind"}
	first := greedyReply(t, model, []tokenizer.Message{system, user("hi")}, 6)
	second := greedyReply(t, model, []tokenizer.Message{system, user("hi"), assistant(first), user("thanks")}, 6)
	if want := first + "\n" + second + "\n" + first + "\n"; out != want {
		t.Errorf("stdout %q, want %q: after /reset, \"hi\" gets the first reply again", out, want)
	}
}

// TestChatDropsTheOldestTurns: in the golden model's 64-token context, turns
// that leave no room for a reply drop the oldest turns, say so on stderr, and
// each reply is the greedy reply to what is left.
func TestChatDropsTheOldestTurns(t *testing.T) {
	const maxTokens = 6
	messages := []string{"one", "two", "three", "four", "five", "six"}
	code, out, errOut := runCLIWithInput(strings.Join(messages, "\n")+"\n",
		"chat", "--model", goldenModel, "--temperature", "0", "--max-tokens", "6", "--system", "sys")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	l, err := loadModel(goldenModel)
	if err != nil {
		t.Fatal(err)
	}
	defer l.file.Close()
	llama3, err := tokenizer.ChatFromGGUF(l.file, l.tokenizer, "")
	if err != nil {
		t.Fatal(err)
	}
	system := tokenizer.Message{Role: "system", Content: "sys"}
	var kept []tokenizer.Message // the turns the chat still holds
	var want strings.Builder
	drops := 0
	for _, text := range messages {
		for { // the documented policy: drop until the prompt leaves --max-tokens free
			prompt, _ := llama3.Prompt(append(append([]tokenizer.Message{system}, kept...), user(text)))
			if len(prompt)+maxTokens <= 64 || len(kept) == 0 {
				break
			}
			kept, drops = kept[2:], drops+1
		}
		history := append(append([]tokenizer.Message{system}, kept...), user(text))
		reply := greedyReply(t, goldenModel, history, maxTokens)
		want.WriteString(reply + "\n")
		kept = append(kept, user(text), assistant(reply))
	}
	if drops == 0 {
		t.Fatal("six turns in 64 tokens dropped none: the test needs more turns")
	}
	if out != want.String() {
		t.Errorf("stdout %q\nwant   %q", out, want.String())
	}
	if n := strings.Count(errOut, "(the context was full: the oldest"); n == 0 || !strings.Contains(errOut, "the system message kept") {
		t.Errorf("stderr %q should say each time turns were dropped, and that the system message stays", errOut)
	}
}

// TestChatBadLines: a message too long for the context even alone, a line that
// is not UTF-8 and an unknown command are each one error line naming the
// input line; the chat goes on, and the exit status says lines failed.
func TestChatBadLines(t *testing.T) {
	model := longerGolden(t, 256)
	input := "hi\n" + strings.Repeat("long ", 200) + "\nbad \xff line\n/rest\nok\n"
	code, out, errOut := runCLIWithInput(input, "chat", "--model", model, "--temperature", "0", "--max-tokens", "4")
	first := greedyReply(t, model, []tokenizer.Message{user("hi")}, 4)
	second := greedyReply(t, model, []tokenizer.Message{user("hi"), assistant(first), user("ok")}, 4)
	if code != 1 || out != first+"\n"+second+"\n" {
		t.Errorf("exit %d, stdout %q; want exit 1 and the replies %q, %q", code, out, first, second)
	}
	for _, want := range []string{
		"goengine chat: line 2: the message does not fit in the context: even with no earlier turns its prompt is",
		"goengine chat: line 3: the message is not valid UTF-8 (byte 4 is 0xff)\n",
		"goengine chat: line 4: unknown command /rest: the commands are /reset and /exit\n",
		"goengine chat: 3 lines failed (see above)\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
}

func TestChatFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"chat"}, 2, "--model is required"},
		{[]string{"chat", "--model", goldenModel, "--max-tokens", "0"}, 2, "--max-tokens must be positive"},
		{[]string{"chat", "--model", goldenModel, "--temperature", "-1"}, 2, "temperature"},
		{[]string{"chat", "--model", goldenModel, "--system", "bad \xff"}, 2, "--system: the text is not valid UTF-8 (byte 4 is 0xff)"},
		{[]string{"chat", "--model", goldenModel, "--system", strings.Repeat("long ", 40)}, 2, "--system: with the chat format it is"},
		{[]string{"chat", "--model", "../../../goldens/tokenizer.gguf"}, 1, "tokenizer.gguf"},
	} {
		if code, _, errOut := runCLI(c.args...); code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}
