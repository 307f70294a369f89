package engine

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"gollm/goengine/model"
	"gollm/goengine/sampler"
	"gollm/goengine/tokenizer"
)

// Conversation is a chat held in one session. Between turns the session's
// cache holds the history in the model's chat format, every turn closed by
// the format's end (<|eot_id|>, <|im_end|>: tokenizer.Chat.History), so that a
// turn runs through the model only what the cache lacks: its user message and
// the header of the reply.
//
// Each turn renders the whole history anew and keeps the longest prefix the
// cache shares with it, so the cache can never drift from the text: a reply
// whose text encodes to other tokens than those drawn, or a history whose
// oldest turns were dropped, costs a re-run of what follows the shared prefix,
// never a wrong context.
type Conversation struct {
	System   string              // the system message, kept by Reset and when old turns are dropped; "" for none
	Messages []tokenizer.Message // the turns, oldest first: a user message, then its reply, and so on

	// Reserve is how many positions a turn's prompt must leave free for its
	// reply: the oldest turns (a user message and its reply) are dropped
	// until it does, or until only the new message is left.
	Reserve int

	session *Session
	chat    *tokenizer.Chat
	cached  []int // the ids in the session's cache, in order
}

// NewConversation starts a chat with m in the format of chat, in a session of its own.
func NewConversation(m *model.Model, chat *tokenizer.Chat, system string) *Conversation {
	return &Conversation{System: system, session: NewSession(m), chat: chat}
}

// Turn is what one exchange did.
type Turn struct {
	Reply string
	Result
	// Prefilled is the number of prompt tokens run through the model: the
	// user message and the reply's header, and any part of the history the
	// cache lacked (all of it after old turns were dropped).
	Prefilled int
	Dropped   int // the oldest turns dropped to make room, each a user message and its reply
}

// Reset starts a new conversation with the same system message. The cache's
// start (BOS and the system message) is reused by the next turn.
func (c *Conversation) Reset() { c.Messages = nil }

// fit is the prompt a message is sent with after the history, and how many of
// the oldest turns it drops to leave Reserve positions free for the reply. A
// message that does not fit in the context with no history at all is an
// error, as is one that is not valid UTF-8.
func (c *Conversation) fit(text string) (prompt []int, dropped int, err error) {
	if !utf8.ValidString(text) {
		return nil, 0, fmt.Errorf("the message is not valid UTF-8")
	}
	user := tokenizer.Message{Role: "user", Content: text}
	contextLength := c.session.Pos() + c.session.Room()
	alone, err := c.render([]tokenizer.Message{user}, true)
	if err != nil {
		return nil, 0, err
	}
	if len(alone) >= contextLength {
		return nil, 0, fmt.Errorf("the message does not fit in the context: even with no earlier turns its prompt is %d tokens "+
			"(the chat format and any system message included), and the context is %d", len(alone), contextLength)
	}
	messages := append(c.Messages[:len(c.Messages):len(c.Messages)], user)
	for {
		if prompt, err = c.render(messages, true); err != nil {
			return nil, 0, err
		}
		if len(prompt)+c.Reserve <= contextLength || len(messages) == 1 {
			return prompt, dropped, nil
		}
		messages, dropped = messages[2:], dropped+1
	}
}

// Send adds a user message, generates the reply with pick and opts, passing
// its text to emit as Generate does, and adds the reply to the history. A reply
// that ends at opts.MaxTokens or at the context's end is kept as it stands and
// closed like any other, so the history stays in the chat format.
//
// On an error the exchange is not kept, and the history is as it was; but when
// ctx ends (the user interrupted the reply) the reply so far is kept, as one
// cut at MaxTokens is, and the error is ctx's.
func (c *Conversation) Send(ctx context.Context, text string, pick *sampler.Sampler, opts Options, emit func(string) error) (Turn, error) {
	var turn Turn
	prompt, dropped, err := c.fit(text)
	if err != nil {
		return turn, err
	}
	turn.Dropped = dropped
	logits, prefilled, err := c.extend(prompt)
	if err != nil {
		return turn, err
	}
	turn.Prefilled = prefilled

	var reply strings.Builder
	var ids []int
	sampled := opts.Sampled
	opts.Sampled = func(id int) {
		ids = append(ids, id)
		if sampled != nil {
			sampled(id)
		}
	}
	turn.Result, err = Generate(ctx, c.session, c.chat.Tokenizer(), logits, pick, opts, func(piece string) error {
		reply.WriteString(piece)
		return emit(piece)
	})
	c.cached = append(c.cached, ids...)[:c.session.Pos()] // the prompt and the drawn tokens, less any not run
	turn.Reply = reply.String()
	if err != nil && ctx.Err() == nil {
		return turn, err
	}
	c.Messages = append(c.Messages[2*dropped:len(c.Messages):len(c.Messages)],
		tokenizer.Message{Role: "user", Content: text}, tokenizer.Message{Role: "assistant", Content: turn.Reply})
	if closeErr := c.close(); err == nil {
		err = closeErr
	}
	return turn, err
}

// close brings the cache to the history's rendering, the reply closed by the
// format's end (<|eot_id|>): that token was drawn but not run, a reply cut at MaxTokens lacks
// its last token too, and a reply's text may encode to other tokens than
// those drawn. Run now, while the user reads the reply, it leaves the next
// turn only its own tokens to run. A history too long for the context is left
// to the next turn, which drops old turns.
func (c *Conversation) close() error {
	history, err := c.render(c.Messages, false)
	if err != nil || len(history) > c.session.Pos()+c.session.Room() {
		return err
	}
	_, _, err = c.extend(history)
	return err
}

// extend makes the cache hold tokens: it keeps the longest prefix the cache
// shares with them and runs the rest, at least the last token, whose logits it
// returns with the number of tokens run.
func (c *Conversation) extend(tokens []int) ([]float32, int, error) {
	keep := 0
	for keep < len(c.cached) && keep < len(tokens)-1 && c.cached[keep] == tokens[keep] {
		keep++
	}
	c.session.Truncate(keep)
	c.cached = c.cached[:keep]
	logits, err := c.session.Prefill(tokens[keep:])
	if err != nil {
		return nil, 0, err
	}
	c.cached = append(c.cached, tokens[keep:]...)
	return logits, len(tokens) - keep, nil
}

// render is the chat format of the system message and messages: a prompt,
// ending with the header of the reply, or the history, ending with the last
// message's end.
func (c *Conversation) render(messages []tokenizer.Message, prompt bool) ([]int, error) {
	if c.System != "" {
		messages = append([]tokenizer.Message{{Role: "system", Content: c.System}}, messages...)
	}
	if prompt {
		return c.chat.Prompt(messages)
	}
	return c.chat.History(messages)
}
