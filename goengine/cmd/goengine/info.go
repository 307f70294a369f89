package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gollm/goengine/gguf"
	"gollm/goengine/model"
	"gollm/goengine/tokenizer"
)

// loaded is a model file opened, checked and read.
type loaded struct {
	file      *gguf.File
	model     *model.Model
	tokenizer *tokenizer.Tokenizer
}

func loadModel(path string) (*loaded, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := model.Load(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &loaded{f, m, tok}, nil
}

func info(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("info", stderr)
	modelPath := fs.String("model", "", "model file (.gguf)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return usagef("--model is required")
	}
	l, err := loadModel(*modelPath)
	if err != nil {
		return err
	}
	defer l.file.Close()
	c := l.model.Config
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	name, _ := l.file.String("general.name")
	fmt.Fprintf(w, "model\t%s (%s)\n", *modelPath, name)
	for _, row := range []struct {
		key   string
		value any
	}{
		{"vocab_size", c.VocabSize}, {"dim", c.Dim}, {"n_layers", c.NLayers}, {"n_heads", c.NHeads},
		{"n_kv_heads", c.NKVHeads}, {"head_dim", c.HeadDim()}, {"ffn_dim", c.FFNDim},
		{"context_length", c.ContextLength}, {"rope_theta", c.RopeTheta}, {"norm_eps", c.NormEps},
		{"tie_embeddings", c.TieEmbeddings},
	} {
		fmt.Fprintf(w, "%s\t%v\n", row.key, row.value)
	}
	fmt.Fprintf(w, "parameters\t%s\n", commas(c.ParamCount()))
	if labels := l.model.Labels; labels != nil {
		fmt.Fprintf(w, "classifier\t%d labels: %s (run it with goengine classify)\n", len(labels), strings.Join(labels, ", "))
	}
	tok := l.tokenizer
	fmt.Fprintf(w, "tokenizer\t%s, %d tokens (%d special), bos %d (added: %v), eos %d\n",
		tok.Kind(), tok.VocabSize(), tok.NumSpecial(), tok.BOS, tok.AddBOS, tok.EOS)
	if chat, err := tokenizer.ChatFromGGUF(l.file, tok, ""); err != nil {
		fmt.Fprintf(w, "chat format\tnone: %v\n", err)
	} else if chat.Format.DefaultSystem != "" {
		fmt.Fprintf(w, "chat format\t%s, default system message %q\n", chat.Format.Name, chat.Format.DefaultSystem)
	} else {
		fmt.Fprintf(w, "chat format\t%s\n", chat.Format.Name)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "tensor\ttype\tshape\tbytes")
	var total uint64
	for _, t := range l.file.Tensors {
		fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", t.Name, t.Type, t.Shape(), commas(int64(t.Size)))
		total += t.Size
	}
	fmt.Fprintf(w, "total\t\t\t%s\n", commas(int64(total)))
	return w.Flush()
}

// commas formats n with thousands separators, as spec/model.md writes counts.
func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
