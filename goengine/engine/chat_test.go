package engine

import (
	"context"
	"slices"
	"strings"
	"testing"

	"gollm/goengine/model"
	"gollm/goengine/tokenizer"
)

func send(t *testing.T, c *Conversation, text string, opts Options) Turn {
	t.Helper()
	var emitted strings.Builder
	turn, err := c.Send(context.Background(), text, greedy(), opts, func(piece string) error {
		emitted.WriteString(piece)
		return nil
	})
	if err != nil {
		t.Fatalf("Send(%q): %v", text, err)
	}
	if emitted.String() != turn.Reply {
		t.Errorf("Send(%q) emitted %q but replied %q", text, emitted.String(), turn.Reply)
	}
	return turn
}

// expectedReply is the greedy reply to messages computed apart from the
// Conversation: Chat.Prompt of the whole history in a fresh session.
func expectedReply(t *testing.T, m *model.Model, tok *tokenizer.Tokenizer, messages []tokenizer.Message, maxTokens int) string {
	t.Helper()
	prompt, err := chatOf(t, tok).Prompt(messages)
	if err != nil {
		t.Fatal(err)
	}
	return printed(t, tok, greedyIDs(t, m, tok, prompt, maxTokens))
}

// checkCache requires the cache to hold exactly the history in the chat format:
// Chat.Prompt(history) less the header of the next reply.
func checkCache(t *testing.T, c *Conversation, history []tokenizer.Message) {
	t.Helper()
	want, err := c.chat.History(history)
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := c.chat.Prompt(history)
	header := len(prompt) - len(want)
	if !slices.Equal(c.cached, want) || c.session.Pos() != len(want) {
		t.Errorf("the cache holds %d tokens %v\nwant len(Chat.Prompt(history)) - %d (the reply header) = %d: %v",
			c.session.Pos(), c.cached, header, len(want), want)
	}
}

// chatOf is tok's chat in the llama3 format, which the goldens' vocabulary has.
func chatOf(t *testing.T, tok *tokenizer.Tokenizer) *tokenizer.Chat {
	t.Helper()
	chat, err := tokenizer.NewChat(tok, tokenizer.ChatFormats["llama3"])
	if err != nil {
		t.Fatal(err)
	}
	return chat
}

func user(text string) tokenizer.Message { return tokenizer.Message{Role: "user", Content: text} }
func assistant(text string) tokenizer.Message {
	return tokenizer.Message{Role: "assistant", Content: text}
}

// TestConversationReusesTheCache: each reply is the greedy reply to the whole
// history rendered with Chat.Prompt, the second turn runs only its own tokens
// (the user message and the reply header, the first reply's <|eot_id|> having
// been run when it ended), and the cache then holds exactly the history.
func TestConversationReusesTheCache(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 256)
	c := NewConversation(m, chatOf(t, tok), "be brief")
	system := tokenizer.Message{Role: "system", Content: "be brief"}
	opts := Options{MaxTokens: 8}

	first := send(t, c, "hi", opts)
	if want := expectedReply(t, m, tok, []tokenizer.Message{system, user("hi")}, 8); first.Reply != want || first.Finish != MaxTokens {
		t.Errorf("turn 1: %q (%v), want %q", first.Reply, first.Finish, want)
	}
	history := []tokenizer.Message{system, user("hi"), assistant(first.Reply)}
	checkCache(t, c, history)
	before := c.session.Pos()

	second := send(t, c, "how are you", opts)
	history = append(history, user("how are you"))
	if want := expectedReply(t, m, tok, history, 8); second.Reply != want {
		t.Errorf("turn 2: %q, want %q", second.Reply, want)
	}
	prompt, _ := chatOf(t, tok).Prompt(history)
	ownTurn, _ := tok.EncodeWithSpecial("<|start_header_id|>user<|end_header_id|>\n\nhow are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
	if second.Prefilled != len(ownTurn) || len(prompt)-before != len(ownTurn) {
		t.Errorf("turn 2 prefilled %d tokens (the prompt is %d, %d of them cached); want only its own %d", second.Prefilled, len(prompt), before, len(ownTurn))
	}
	history = append(history, assistant(second.Reply))
	checkCache(t, c, history)
	if !slices.Equal(c.Messages, history[1:]) {
		t.Errorf("Messages = %q, want %q", c.Messages, history[1:])
	}
}

// TestConversationReset: after Reset the same message gets the same reply, and
// the system message's tokens are reused (here more: the old history began
// with the same message).
func TestConversationReset(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 256)
	c := NewConversation(m, chatOf(t, tok), "be brief")
	opts := Options{MaxTokens: 6}
	first := send(t, c, "hi", opts)
	send(t, c, "and then?", opts)
	c.Reset()
	again := send(t, c, "hi", opts)
	system, _ := chatOf(t, tok).History([]tokenizer.Message{{Role: "system", Content: "be brief"}})
	prompt, _ := chatOf(t, tok).Prompt([]tokenizer.Message{{Role: "system", Content: "be brief"}, user("hi")})
	if again.Reply != first.Reply || again.Prefilled > len(prompt)-len(system) {
		t.Errorf("after Reset: %q, %d tokens prefilled; want %q and at most %d (all but the system message)", again.Reply, again.Prefilled, first.Reply, len(prompt)-len(system))
	}
	if len(c.Messages) != 2 {
		t.Errorf("after Reset and one turn, Messages = %q", c.Messages)
	}
}

// TestConversationDropsTheOldestTurns: in a small context, turns that would
// leave less than Reserve positions free drop the oldest exchanges (the system
// message stays) and the reply is the greedy reply to what is left.
func TestConversationDropsTheOldestTurns(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 64)
	c := NewConversation(m, chatOf(t, tok), "sys")
	c.Reserve = 8
	opts := Options{MaxTokens: 8}
	dropped := 0
	for i, text := range []string{"one", "two", "three", "four", "five", "six"} {
		kept, cached := slices.Clone(c.Messages), slices.Clone(c.cached)
		turn := send(t, c, text, opts)
		dropped += turn.Dropped
		history := append([]tokenizer.Message{{Role: "system", Content: "sys"}}, kept[2*turn.Dropped:]...)
		history = append(history, user(text))
		prompt, _ := chatOf(t, tok).Prompt(history)
		if want := expectedReply(t, m, tok, history, 8); turn.Reply != want || len(prompt)+c.Reserve > 64 {
			t.Errorf("turn %d: %q after dropping %d, prompt %d tokens; want %q and room for 8", i, turn.Reply, turn.Dropped, len(prompt), want)
		}
		shared := 0 // the cache's prefix in common with the new prompt
		for shared < len(cached) && shared < len(prompt)-1 && cached[shared] == prompt[shared] {
			shared++
		}
		if turn.Prefilled != len(prompt)-shared {
			t.Errorf("turn %d dropped %d turns and prefilled %d tokens; want all %d but the %d shared with the cache", i, turn.Dropped, turn.Prefilled, len(prompt), shared)
		}
		checkCache(t, c, append(history, assistant(turn.Reply)))
	}
	if dropped == 0 {
		t.Error("six turns in a 64-token context dropped none")
	}
}

// TestConversationContextFull: a reply that runs to the context's end is kept,
// and the next turn drops it to make room.
func TestConversationContextFull(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 48)
	c := NewConversation(m, chatOf(t, tok), "")
	c.Reserve = 8
	first := send(t, c, "hi", Options{})
	if first.Finish != ContextFull || c.session.Room() != 0 {
		t.Fatalf("turn 1 ended with %v, %d positions free; the test needs a reply to the context's end", first.Finish, c.session.Room())
	}
	second := send(t, c, "more", Options{MaxTokens: 4})
	if want := expectedReply(t, m, tok, []tokenizer.Message{user("more")}, 4); second.Dropped != 1 || second.Reply != want {
		t.Errorf("turn 2: dropped %d, %q; want 1 and %q", second.Dropped, second.Reply, want)
	}
}

// TestConversationTooLongMessage: a message that cannot fit even alone is an
// error that changes nothing, as is one that is not UTF-8, and the chat goes on.
func TestConversationTooLongMessage(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 64)
	c := NewConversation(m, chatOf(t, tok), "")
	opts := Options{MaxTokens: 4}
	first := send(t, c, "hi", opts)
	cached := slices.Clone(c.cached)
	for _, text := range []string{strings.Repeat("long ", 40), "bad \xff"} {
		_, err := c.Send(context.Background(), text, greedy(), opts, func(string) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "does not fit in the context") && !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("Send(%q): err = %v", text, err)
		}
		if len(c.Messages) != 2 || !slices.Equal(c.cached, cached) {
			t.Errorf("Send(%q) failed but changed the chat: %q", text, c.Messages)
		}
	}
	history := []tokenizer.Message{user("hi"), assistant(first.Reply), user("ok")}
	if turn := send(t, c, "ok", opts); turn.Reply != expectedReply(t, m, tok, history, 4) {
		t.Errorf("the turn after the errors: %q", turn.Reply)
	}
}

// TestConversationHealsTheCache: a reply whose drawn tokens are not what its
// text encodes to (here a header token, which prints nothing) is re-run from
// where they differ, so the next reply is still the greedy reply to the text.
func TestConversationHealsTheCache(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 256)
	prompt, _ := chatOf(t, tok).Prompt([]tokenizer.Message{user("hi")})
	header, _ := tok.EncodeWithSpecial("<|start_header_id|>")
	swapOutputRows(m, greedyIDs(t, m, tok, prompt, 1)[0], header[0])
	c := NewConversation(m, chatOf(t, tok), "")
	var drawn []int
	first := send(t, c, "hi", Options{MaxTokens: 6, Sampled: func(id int) { drawn = append(drawn, id) }})
	if drawn[0] != header[0] {
		t.Fatalf("the first token drawn is %d, the test needs the header %d", drawn[0], header[0])
	}
	history := []tokenizer.Message{user("hi"), assistant(first.Reply)}
	checkCache(t, c, history)
	history = append(history, user("again"))
	if second := send(t, c, "again", Options{MaxTokens: 6}); second.Reply != expectedReply(t, m, tok, history, 6) {
		t.Errorf("turn 2: %q, want %q", second.Reply, expectedReply(t, m, tok, history, 6))
	}
}

// TestConversationInterrupted: a reply cut short by the end of its context
// (the user's Ctrl-C) is kept as it stands, and the cache holds it closed.
func TestConversationInterrupted(t *testing.T) {
	tok := goldenTokenizer(t)
	m := randomModel(t, tok, 256)
	c := NewConversation(m, chatOf(t, tok), "")
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	opts := Options{MaxTokens: 20, Sampled: func(int) {
		if n++; n == 3 {
			cancel()
		}
	}}
	turn, err := c.Send(ctx, "hi", greedy(), opts, func(string) error { return nil })
	if err != context.Canceled || turn.Generated != 3 || len(c.Messages) != 2 || c.Messages[1].Content != turn.Reply {
		t.Fatalf("interrupted: %+v, %v, Messages %q", turn, err, c.Messages)
	}
	checkCache(t, c, c.Messages)
}
