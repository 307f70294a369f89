package tokenizer

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"gollm/goengine/gguf"
)

// Message is one turn of a chat: a role ("system", "user" or "assistant") and
// its text.
type Message struct {
	Role, Content string
}

// ChatFormat is how one family of models lays out a conversation
// (spec/tokenizer.md §5): the text around each message, with the format's
// control tokens written in it as text, and the header of the reply the model
// is to write. goengine renders these itself rather than running the file's
// Jinja template; DetectChatFormat picks the format from the template as
// llama.cpp does.
type ChatFormat struct {
	Name string
	// Turn is the text before a message of role ROLE ("{role}" stands for the
	// role's name) and End the text after it. Reply is Turn for the assistant,
	// the prompt's last words.
	Turn, End, Reply string
	// Trim removes the white space around each message's content, as the
	// format's template does ("| trim").
	Trim bool
	// SystemInUser puts a system message at the start of the first user
	// message, for formats with no system turn (gemma).
	SystemInUser bool
	// Roles renames roles for formats that spell them otherwise (gemma's
	// "model" for "assistant").
	Roles map[string]string
	// DefaultSystem is the system message the template sends when a
	// conversation has none (SmolLM2's "You are a helpful AI assistant named
	// SmolLM…"), or "".
	DefaultSystem string
	// Inst, if not nil, lays the conversation out in [INST] turns (Llama 2,
	// Mistral) in place of Turn, End and Reply.
	Inst *InstFormat
}

// InstFormat is the layout of the [INST] formats of Llama 2 and Mistral, as
// llama.cpp's llm_chat_apply_template writes them: the messages are grouped
// into instruction turns, each opened by a text such as "[INST] " and closed
// by an assistant message, and each role has its own text around its
// content. There is no reply header: a prompt ends with the last user
// message's "[/INST]", and History is the same rendering.
//
// The whole rendering is encoded as llama.cpp encodes it, as one text cut at
// control tokens, which SentencePiece needs ("[INST] hi [/INST]" encoded in
// pieces gives other ids); control tokens are recognised only in the
// format's own text, never in the content (Tokenizer.encodeTrusted).
type InstFormat struct {
	// Start opens the first turn at the start of every conversation, even
	// an empty one (Llama 2's "[INST] "). Without it the first message opens
	// a turn with Open, as every later one does when no turn is open.
	Start, Open string
	// System, User and Assistant are the texts around the content of a
	// message of that role.
	System, User, Assistant Around
	// TrimAssistant trims the content of assistant messages only
	// (mistral-v3); ChatFormat.Trim trims every message's.
	TrimAssistant bool
}

// Around is the text before and the text after a message's content.
type Around [2]string

// The chat formats goengine renders, by the names of --chat-format. Their
// layouts are llama.cpp's (llm_chat_apply_template) for the same templates.
var ChatFormats = map[string]ChatFormat{
	"llama3": {Name: "llama3", Turn: "<|start_header_id|>{role}<|end_header_id|>\n\n", End: "<|eot_id|>",
		Reply: "<|start_header_id|>assistant<|end_header_id|>\n\n", Trim: true},
	"chatml": {Name: "chatml", Turn: "<|im_start|>{role}\n", End: "<|im_end|>\n", Reply: "<|im_start|>assistant\n"},
	"zephyr": {Name: "zephyr", Turn: "<|{role}|>\n", End: "<|endoftext|>\n", Reply: "<|assistant|>\n"},
	"phi3":   {Name: "phi3", Turn: "<|{role}|>\n", End: "<|end|>\n", Reply: "<|assistant|>\n"},
	"gemma": {Name: "gemma", Turn: "<start_of_turn>{role}\n", End: "<end_of_turn>\n", Reply: "<start_of_turn>model\n",
		Trim: true, SystemInUser: true, Roles: map[string]string{"assistant": "model"}},

	// The [INST] formats, as llama.cpp writes them. Llama 2:
	// "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]{assistant}</s>[INST] {user} [/INST]";
	// llama2 has no <<SYS>> block (the system text and "\n" start the user's
	// turn), llama2-sys-bos reopens with "<s>[INST] ", llama2-sys-strip trims.
	"llama2": {Name: "llama2", Inst: &InstFormat{Start: "[INST] ", Open: "[INST] ",
		System: Around{"", "\n"}, User: Around{"", " [/INST]"}, Assistant: Around{"", "</s>"}}},
	"llama2-sys": {Name: "llama2-sys", Inst: &InstFormat{Start: "[INST] ", Open: "[INST] ",
		System: Around{"<<SYS>>\n", "\n<</SYS>>\n\n"}, User: Around{"", " [/INST]"}, Assistant: Around{"", "</s>"}}},
	"llama2-sys-bos": {Name: "llama2-sys-bos", Inst: &InstFormat{Start: "[INST] ", Open: "<s>[INST] ",
		System: Around{"<<SYS>>\n", "\n<</SYS>>\n\n"}, User: Around{"", " [/INST]"}, Assistant: Around{"", "</s>"}}},
	"llama2-sys-strip": {Name: "llama2-sys-strip", Trim: true, Inst: &InstFormat{Start: "[INST] ", Open: "[INST] ",
		System: Around{"<<SYS>>\n", "\n<</SYS>>\n\n"}, User: Around{"", " [/INST]"}, Assistant: Around{"", "</s>"}}},
	// Mistral v3: "[INST] {system}\n\n{user}[/INST] {assistant}</s>[INST] {user}[/INST]", the
	// assistant's content trimmed; v1 puts a space before [INST] and [/INST],
	// v3-tekken none after them.
	"mistral-v1": {Name: "mistral-v1", Inst: &InstFormat{Open: " [INST] ",
		System: Around{"", "\n\n"}, User: Around{"", " [/INST]"}, Assistant: Around{" ", "</s>"}}},
	"mistral-v3": {Name: "mistral-v3", Inst: &InstFormat{Open: "[INST] ", TrimAssistant: true,
		System: Around{"", "\n\n"}, User: Around{"", "[/INST]"}, Assistant: Around{" ", "</s>"}}},
	"mistral-v3-tekken": {Name: "mistral-v3-tekken", Inst: &InstFormat{Open: "[INST]",
		System: Around{"", "\n\n"}, User: Around{"", "[/INST]"}, Assistant: Around{"", "</s>"}}},
	// Mistral v7 marks each message and has no turns:
	// "[SYSTEM_PROMPT] {system}[/SYSTEM_PROMPT][INST] {user}[/INST] {assistant}</s>".
	"mistral-v7": {Name: "mistral-v7", Inst: &InstFormat{
		System: Around{"[SYSTEM_PROMPT] ", "[/SYSTEM_PROMPT]"}, User: Around{"[INST] ", "[/INST]"}, Assistant: Around{" ", "</s>"}}},
	"mistral-v7-tekken": {Name: "mistral-v7-tekken", Inst: &InstFormat{
		System: Around{"[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"}, User: Around{"[INST]", "[/INST]"}, Assistant: Around{"", "</s>"}}},
}

// chatFormatNames lists ChatFormats' names, sorted, for messages.
func chatFormatNames() string {
	names := make([]string, 0, len(ChatFormats))
	for name := range ChatFormats {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// DetectChatFormat names the format of a Jinja chat template by the marks
// llama.cpp's llm_chat_detect_template looks for, in its order, and reads a
// default system message out of a ChatML template. A template that is a
// format's name is that format. A template it does not recognise is an
// error: the caller names a format with --chat-format.
func DetectChatFormat(template string) (ChatFormat, error) {
	if format, ok := ChatFormats[template]; ok {
		return format, nil
	}
	has := func(s string) bool { return strings.Contains(template, s) }
	var name string
	switch {
	case has("<|im_start|>") && (has("<|im_sep|>") || has("<end_of_utterance>")):
		return ChatFormat{}, fmt.Errorf("the chat template is phi4's or SmolVLM's, which goengine does not render; name a format with --chat-format (%s)", chatFormatNames())
	case has("<|im_start|>"):
		name = "chatml"
	case strings.HasPrefix(template, "mistral") || has("[INST]"):
		name = instFormatName(has)
	case has("<|assistant|>") && has("<|end|>"):
		name = "phi3"
	case has("<|user|>") && has("<|endoftext|>") && !has("<|assistant|>"):
		name = "zephyr" // llama.cpp tests <|assistant|> + <|user|> (glmedge, falcon3) before zephyr
	case has("<start_of_turn>"):
		name = "gemma"
	case has("<|start_header_id|>") && has("<|end_header_id|>"):
		name = "llama3"
	default:
		return ChatFormat{}, fmt.Errorf("the chat template is none that goengine knows (%s); name one with --chat-format", chatFormatNames())
	}
	format := ChatFormats[name]
	if name == "chatml" {
		format.DefaultSystem = defaultSystem(template)
	}
	return format, nil
}

// instFormatName tells the [INST] formats apart by llama.cpp's marks: Mistral
// v7's system prompt, the official Mistral templates' system message or tool
// list (v1 puts a space before [INST], v3-tekken quotes it), else Llama 2 and
// its variants.
func instFormatName(has func(string) bool) string {
	switch {
	case has("[SYSTEM_PROMPT]"):
		return "mistral-v7"
	case has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]"):
		switch {
		case has(" [INST]"):
			return "mistral-v1"
		case has(`"[INST]"`):
			return "mistral-v3-tekken"
		}
		return "mistral-v3"
	case has("content.strip()"):
		return "llama2-sys-strip"
	case has("bos_token + '[INST]"):
		return "llama2-sys-bos"
	case has("<<SYS>>"):
		return "llama2-sys"
	}
	return "llama2"
}

// defaultSystemText finds a system turn written out as a literal in a ChatML
// template: the message it sends when the conversation brings none.
var defaultSystemText = regexp.MustCompile(`'<\|im_start\|>system(?:\n|\\n)([^'{}]*?)<\|im_end\|>`)

func defaultSystem(template string) string {
	m := defaultSystemText.FindStringSubmatch(template)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], `\n`, "\n")
}

// ChatFromGGUF is the chat of a model file: the format named by override if
// it is not "", else the one detected from tokenizer.chat_template, else,
// for a file without a template whose vocabulary has LLaMA 3's header tokens
// (a gollm model before fine-tuning), llama3.
func ChatFromGGUF(f *gguf.File, tok *Tokenizer, override string) (*Chat, error) {
	if override != "" {
		format, ok := ChatFormats[override]
		if !ok {
			return nil, fmt.Errorf("chat format %q: expected one of %s", override, chatFormatNames())
		}
		return NewChat(tok, format)
	}
	if _, ok := f.Metadata["tokenizer.chat_template"]; !ok {
		if tok.hasSpecials("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>") {
			return NewChat(tok, ChatFormats["llama3"])
		}
		return nil, fmt.Errorf("%s: no tokenizer.chat_template, so the chat format is unknown; name one with --chat-format (%s)", f.Path, chatFormatNames())
	}
	template, err := f.String("tokenizer.chat_template")
	if err != nil {
		return nil, err
	}
	format, err := DetectChatFormat(template)
	if err != nil {
		return nil, fmt.Errorf("%s: tokenizer.chat_template: %w", f.Path, err)
	}
	return NewChat(tok, format)
}

// Chat renders conversations for one model: its tokenizer and chat format.
type Chat struct {
	Format ChatFormat
	tok    *Tokenizer
}

// Tokenizer is the chat's tokenizer.
func (c *Chat) Tokenizer() *Tokenizer { return c.tok }

// NewChat checks that the vocabulary has every control token of format as
// one token (a format spelled out in ordinary text would not be the one the
// model learned).
func NewChat(tok *Tokenizer, format ChatFormat) (*Chat, error) {
	texts := []string{format.Turn, format.End, format.Reply}
	if in := format.Inst; in != nil {
		texts = append(texts, in.Start, in.Open)
		texts = append(texts, in.System[:]...)
		texts = append(texts, in.User[:]...)
		texts = append(texts, in.Assistant[:]...)
	}
	for _, text := range texts {
		for _, mark := range controlMarks.FindAllString(text, -1) {
			if mark != "<|{role}|>" && !tok.hasSpecials(mark) {
				return nil, fmt.Errorf("chat format %s: the vocabulary has no control token %s", format.Name, mark)
			}
		}
	}
	return &Chat{Format: format, tok: tok}, nil
}

// controlMarks are the control tokens a format's texts name: <|...|>, <...>
// and </...>. The [INST] formats' "[INST]" is not one: it is text in Llama 2's
// vocabulary and a control token in Mistral v3's.
var controlMarks = regexp.MustCompile(`<\|[^|]*\|>|</?[a-z_]+>`)

// hasSpecials reports whether every text is a special token's.
func (t *Tokenizer) hasSpecials(texts ...string) bool {
	for _, text := range texts {
		if _, ok := t.specials[text]; !ok {
			return false
		}
	}
	return true
}

// Prompt returns the ids of a conversation in the chat format, ending with the
// header of the assistant turn the model is to write; for llama3
// (spec/tokenizer.md §5):
//
//	<|begin_of_text|>{<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>}...
//	<|start_header_id|>assistant<|end_header_id|>\n\n
//
// The format's text is encoded with its control tokens recognised, and the
// content as ordinary text, so a message cannot smuggle in a working control
// token. The [INST] formats have no header: their prompt ends with the last
// user message's "[/INST]" and is their History.
func (c *Chat) Prompt(messages []Message) ([]int, error) {
	return c.render(messages, true)
}

// History returns the ids of a conversation without the header of a next
// turn: every message closed by the format's end, so that Prompt(messages) is
// History(messages) followed by the reply's header. A chat keeps its history
// in a KV cache in this form between turns.
func (c *Chat) History(messages []Message) ([]int, error) {
	return c.render(messages, false)
}

func (c *Chat) render(messages []Message, prompt bool) ([]int, error) {
	f, t := c.Format, c.tok
	for i, m := range messages {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return nil, fmt.Errorf("message %d: role %q: expected system, user or assistant", i, m.Role)
		}
	}
	messages = c.withSystem(messages)
	var ids []int
	if t.AddBOS {
		ids = append(ids, t.BOS)
	}
	if f.Inst != nil {
		for i, m := range messages {
			if !utf8.ValidString(m.Content) {
				return nil, fmt.Errorf("message %d: text is not valid UTF-8", i)
			}
		}
		r := f.Inst.render(messages, f.Trim)
		encoded, err := t.encodeTrusted(r.text.String(), r.trusted)
		if err != nil {
			return nil, err
		}
		return append(ids, encoded...), nil
	}
	special := func(text string) error {
		encoded, err := t.EncodeWithSpecial(text)
		ids = append(ids, encoded...)
		return err
	}
	for i, m := range messages {
		role := m.Role
		if renamed, ok := f.Roles[role]; ok {
			role = renamed
		}
		content := m.Content
		if f.Trim {
			content = trim(content)
		}
		text, err := t.Encode(content)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		if err := special(strings.ReplaceAll(f.Turn, "{role}", role)); err != nil {
			return nil, err
		}
		ids = append(ids, text...)
		if err := special(f.End); err != nil {
			return nil, err
		}
	}
	if prompt {
		if err := special(f.Reply); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// rendering is a conversation written out as text, with the byte ranges
// [start, end) of the format's own text, in order.
type rendering struct {
	text    strings.Builder
	trusted [][2]int
}

// format writes the format's text s.
func (r *rendering) format(s string) {
	start := r.text.Len()
	r.text.WriteString(s)
	if n := len(r.trusted); n > 0 && r.trusted[n-1][1] == start {
		r.trusted[n-1][1] = r.text.Len()
	} else if s != "" {
		r.trusted = append(r.trusted, [2]int{start, r.text.Len()})
	}
}

// render writes messages out in [INST] turns, as llama.cpp's
// llm_chat_apply_template; trimAll trims every message's content.
func (in *InstFormat) render(messages []Message, trimAll bool) *rendering {
	r := &rendering{}
	r.format(in.Start)
	open := in.Start != ""
	for _, m := range messages {
		if !open {
			r.format(in.Open)
			open = true
		}
		around, content := in.User, m.Content
		switch m.Role {
		case "system":
			around = in.System
		case "assistant":
			around, open = in.Assistant, false
			if in.TrimAssistant {
				content = trim(content)
			}
		}
		if trimAll {
			content = trim(content)
		}
		r.format(around[0])
		r.text.WriteString(content)
		r.format(around[1])
	}
	return r
}

// withSystem applies the format's rules for system messages: its default
// when the conversation has none, and for formats without a system turn the
// system text put before the first user message.
func (c *Chat) withSystem(messages []Message) []Message {
	f := c.Format
	hasSystem := len(messages) > 0 && messages[0].Role == "system"
	if !hasSystem && f.DefaultSystem != "" {
		messages = append([]Message{{Role: "system", Content: f.DefaultSystem}}, messages...)
	}
	if !f.SystemInUser {
		return messages
	}
	var out []Message
	system := ""
	for _, m := range messages {
		switch {
		case m.Role == "system":
			system += trim(m.Content)
		case m.Role == "user" && system != "":
			out = append(out, Message{Role: "user", Content: system + "\n\n" + trim(m.Content)})
			system = ""
		default:
			out = append(out, m)
		}
	}
	return out
}

// trim removes the C locale's white space (space, \t, \n, \v, \f, \r) from
// both ends, as llama.cpp's templates do; Unicode spaces are content.
func trim(s string) string { return strings.Trim(s, " \t\n\v\f\r") }
