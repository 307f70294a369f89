package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gollm/goengine/engine"
	"gollm/goengine/model"
)

// classify prints a classifier's answer for each text as one JSON line,
// {"label": ..., "probs": {label: p, ...}} with the probabilities in the file's
// label order, as `python -m jaxmodel.reference classify` does. With --jsonl,
// each non-empty line is an object with a "text" string; if every line also
// has a "label", the accuracy and the confusion matrix follow on stderr. Lines
// are classified as they are read; the first bad one ends the command.
func classify(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("classify", stderr)
	modelPath := fs.String("model", "", "classifier model file (.gguf)")
	text := fs.String("text", "", "one text to classify")
	jsonl := fs.String("jsonl", "", `JSON Lines file (- for stdin) of {"text": ...} objects, each with an optional "label"`)
	threads := threadsFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return usagef("--model is required")
	}
	if given(fs, "text") == given(fs, "jsonl") {
		return usagef("give --text or --jsonl, exactly one of them")
	}
	if i := invalidUTF8([]byte(*text)); i >= 0 {
		return usagef("--text: the text is not valid UTF-8 (byte %d is %#02x)", i, (*text)[i])
	}
	var data []byte
	name := *jsonl
	if given(fs, "jsonl") {
		var err error
		switch name {
		case "":
			return usagef("--jsonl needs a file name, or - for stdin")
		case "-":
			name = "(stdin)"
			data, err = io.ReadAll(stdin)
		default:
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return fmt.Errorf("--jsonl: %w", err)
		}
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	l, err := loadModel(*modelPath)
	if err != nil {
		return err
	}
	defer l.file.Close()
	if l.model.Labels == nil {
		return fmt.Errorf("%s: not a classifier (no %s): use goengine generate or chat", *modelPath, model.LabelsKey)
	}
	c := &classifier{l: l, session: engine.NewSession(l.model), out: bufio.NewWriter(stdout)}
	defer c.out.Flush()
	if given(fs, "text") {
		_, err := c.classify("--text", *text)
		return err
	}
	return c.file(name, data, stderr)
}

// classifier classifies texts with one model and session, writing a JSON line each.
type classifier struct {
	l       *loaded
	session *engine.Session
	out     *bufio.Writer
}

// classify classifies one text and prints its JSON line; where names the
// input in errors ("--text", "FILE:LINE").
func (c *classifier) classify(where, text string) (engine.Prediction, error) {
	tok, m := c.l.tokenizer, c.l.model
	ids, err := tok.Encode(text) // as ordinary text: special-token text is not special here
	if err != nil {
		return engine.Prediction{}, fmt.Errorf("%s: %w", where, err)
	}
	ids = tok.WithBOS(ids)
	if len(ids) > m.Config.ContextLength {
		return engine.Prediction{}, fmt.Errorf("%s: %d tokens, longer than the context of %d", where, len(ids), m.Config.ContextLength)
	}
	p, err := c.session.Classify(ids)
	if err != nil {
		return engine.Prediction{}, fmt.Errorf("%s: %w", where, err)
	}
	c.out.WriteString(`{"label": `)
	writeJSON(c.out, p.Label)
	c.out.WriteString(`, "probs": {`)
	for i, label := range m.Labels { // in the file's order, which a Go map would not keep
		if i > 0 {
			c.out.WriteString(", ")
		}
		writeJSON(c.out, label)
		c.out.WriteString(": ")
		writeJSON(c.out, p.Probs[i])
	}
	c.out.WriteString("}}\n")
	return p, c.out.Flush() // a line is visible as soon as it is classified
}

// writeJSON writes v (a string or a finite float64) as JSON, UTF-8 passed through.
func writeJSON(w *bufio.Writer, v any) {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	e.Encode(v) // cannot fail: Classify returns finite probabilities
	w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// file classifies every non-empty line of a JSON Lines file, and scores the
// predictions when every line has a "label".
func (c *classifier) file(name string, data []byte, stderr io.Writer) error {
	labels := c.l.model.Labels
	confusion := make([][]int, len(labels)) // [true][predicted]
	for i := range confusion {
		confusion[i] = make([]int, len(labels))
	}
	lines, labeled := 0, 0
	for number, line := range strings.Split(string(data), "\n") {
		where := fmt.Sprintf("%s:%d", name, number+1)
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		lines++
		if i := invalidUTF8([]byte(line)); i >= 0 {
			return fmt.Errorf("%s: not valid UTF-8 (byte %d of the line is %#02x)", where, i, line[i])
		}
		var item any
		if err := json.Unmarshal([]byte(line), &item); err != nil {
			return fmt.Errorf("%s: not valid JSON (%v)", where, err)
		}
		object, _ := item.(map[string]any)
		text, ok := object["text"].(string)
		if !ok {
			return fmt.Errorf(`%s: expected an object with a "text" string`, where)
		}
		want := -1
		if value, ok := object["label"]; ok {
			label, ok := value.(string)
			if !ok {
				return fmt.Errorf(`%s: "label" is not a string`, where)
			}
			if want = slices.Index(labels, label); want < 0 {
				return fmt.Errorf("%s: label %q is not one the model was trained on (labels: %s)", where, label, strings.Join(labels, ", "))
			}
			labeled++
		}
		p, err := c.classify(where, text)
		if err != nil {
			return err
		}
		if want >= 0 {
			confusion[want][slices.Index(labels, p.Label)]++
		}
	}
	switch {
	case labeled == 0:
	case labeled < lines:
		fmt.Fprintf(stderr, "no accuracy: %d of %d lines have a \"label\"\n", labeled, lines)
	default:
		printScore(stderr, labels, confusion, lines)
	}
	return nil
}

// printScore prints the accuracy and the confusion matrix, a row per true
// label and a column per predicted one, in the model's label order.
func printScore(stderr io.Writer, labels []string, confusion [][]int, n int) {
	right := 0
	for i := range labels {
		right += confusion[i][i]
	}
	fmt.Fprintf(stderr, "accuracy: %d/%d = %.1f%%\n", right, n, 100*float64(right)/float64(n))
	rows := [][]string{append([]string{"true \\ predicted"}, labels...)}
	for i, label := range labels {
		row := []string{label}
		for _, count := range confusion[i] {
			row = append(row, strconv.Itoa(count))
		}
		rows = append(rows, row)
	}
	width := make([]int, len(rows[0])) // in runes: labels are UTF-8
	for _, row := range rows {
		for j, cell := range row {
			width[j] = max(width[j], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows { // the first column to the left, the counts to the right
		line := row[0] + strings.Repeat(" ", width[0]-utf8.RuneCountInString(row[0]))
		for j, cell := range row[1:] {
			line += strings.Repeat(" ", 2+width[j+1]-utf8.RuneCountInString(cell)) + cell
		}
		fmt.Fprintln(stderr, line)
	}
}
