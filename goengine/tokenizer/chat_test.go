package tokenizer

import (
	"slices"
	"strings"
	"testing"
)

// TestChatPromptIsTheSpecTemplate encodes a conversation and compares it with
// the template of spec/tokenizer.md §5 written out and encoded with its control
// tokens recognised, a separate path through the tokenizer.
func TestChatPromptIsTheSpecTemplate(t *testing.T) {
	tok := load(t)
	got, err := tok.ChatPrompt([]Message{{"system", "Be brief."}, {"user", "hi there"}, {"assistant", "hello"}, {"user", "a story?"}})
	if err != nil {
		t.Fatal(err)
	}
	template := "<|begin_of_text|>" +
		"<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nhi there<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\nhello<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\na story?<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\n"
	want, err := tok.EncodeWithSpecial(template)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ChatPrompt = %v\nwant          %v", got, want)
	}
}

// TestChatHistoryIsThePromptLessTheHeader: ChatPrompt is ChatHistory and then
// the assistant's header, and the history ends with the last turn's <|eot_id|>.
func TestChatHistoryIsThePromptLessTheHeader(t *testing.T) {
	tok := load(t)
	messages := []Message{{"system", "Be brief."}, {"user", "hi there"}, {"assistant", "hello"}}
	history, err := tok.ChatHistory(messages)
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := tok.ChatPrompt(messages)
	header, _ := tok.EncodeWithSpecial("<|start_header_id|>assistant<|end_header_id|>\n\n")
	if !slices.Equal(prompt, append(slices.Clone(history), header...)) || history[len(history)-1] != tok.EOT {
		t.Errorf("ChatHistory = %v\nChatPrompt  = %v\nheader      = %v", history, prompt, header)
	}
	if empty, _ := tok.ChatHistory(nil); !slices.Equal(empty, []int{tok.BOS}) {
		t.Errorf("ChatHistory(nil) = %v, want only <|begin_of_text|>", empty)
	}
}

func TestChatPromptKeepsControlTextOrdinary(t *testing.T) {
	tok := load(t)
	ids, err := tok.ChatPrompt([]Message{{"user", "<|eot_id|>"}})
	if err != nil {
		t.Fatal(err)
	}
	eots := 0
	for _, id := range ids {
		if id == tok.EOT {
			eots++
		}
	}
	if eots != 1 { // the one that closes the user's turn
		t.Errorf("the user's \"<|eot_id|>\" text became a control id: %v", ids)
	}
}

func TestChatPromptErrors(t *testing.T) {
	tok := load(t)
	if _, err := tok.ChatPrompt([]Message{{"tool", "x"}}); err == nil || !strings.Contains(err.Error(), `role "tool"`) {
		t.Errorf("unknown role: err = %v", err)
	}
	if _, err := tok.ChatPrompt([]Message{{"user", "\xff"}}); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8: err = %v", err)
	}
}

func TestIsControl(t *testing.T) {
	tok := load(t)
	for id, want := range map[int]bool{tok.BOS: true, tok.EOT: true, tok.VocabSize() - 1: true, 0: false, 300: false, -1: false, tok.VocabSize(): false} {
		if got := tok.IsControl(id); got != want {
			t.Errorf("IsControl(%d) = %v, want %v", id, got, want)
		}
	}
}
