package tokenizer

import "fmt"

// Message is one turn of a chat: a role ("system", "user" or "assistant") and
// its text.
type Message struct {
	Role, Content string
}

// ChatPrompt returns the ids of a conversation in the LLaMA-3 chat format
// (spec/tokenizer.md §5), ending with the header of the assistant turn the model
// is to write:
//
//	<|begin_of_text|>{<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>}...
//	<|start_header_id|>assistant<|end_header_id|>\n\n
//
// Control tokens are inserted as ids and the text is encoded as ordinary text,
// so a message cannot smuggle in a working control token.
func (t *Tokenizer) ChatPrompt(messages []Message) ([]int, error) {
	return t.chat(messages, true)
}

// ChatHistory returns the ids of a conversation in the chat format without the
// header of a next turn: every message closed by <|eot_id|>, so that
// ChatPrompt(messages) is ChatHistory(messages) followed by the assistant's
// header. A chat keeps its history in a KV cache in this form between turns.
func (t *Tokenizer) ChatHistory(messages []Message) ([]int, error) {
	return t.chat(messages, false)
}

func (t *Tokenizer) chat(messages []Message, prompt bool) ([]int, error) {
	start, ok1 := t.specials["<|start_header_id|>"]
	end, ok2 := t.specials["<|end_header_id|>"]
	if !ok1 || !ok2 || t.EOT < 0 {
		return nil, fmt.Errorf("the vocabulary lacks the chat control tokens (<|start_header_id|>, <|end_header_id|>, <|eot_id|>)")
	}
	ids := []int{t.BOS}
	turn := func(role, content string, last bool) error {
		roleIDs, err := t.Encode(role)
		if err != nil {
			return err
		}
		text, err := t.Encode("\n\n" + content)
		if err != nil {
			return err
		}
		ids = append(append(append(append(ids, start), roleIDs...), end), text...)
		if !last {
			ids = append(ids, t.EOT)
		}
		return nil
	}
	for i, m := range messages {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return nil, fmt.Errorf("message %d: role %q: expected system, user or assistant", i, m.Role)
		}
		if err := turn(m.Role, m.Content, false); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
	}
	if prompt {
		if err := turn("assistant", "", true); err != nil {
			return nil, err
		}
	}
	return ids, nil
}
