package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gollm/goengine/gguf"
)

const goldenClassifier = "../../../goldens/classifier.gguf"

var goldenLabels = []string{"alpha", "beta", "gamma", "δέλτα"}

// classifierCase is one case of goldens/classifier.cases.gguf.
type classifierCase struct {
	text, label string
	probs       []float32
}

func classifierCases(t *testing.T) []classifierCase {
	t.Helper()
	f, err := gguf.Open("../../../goldens/classifier.cases.gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	count, err := f.Uint("classifier.count")
	if err != nil {
		t.Fatal(err)
	}
	var cases []classifierCase
	for k := 0; k < int(count); k++ {
		name := func(what string) string { return fmt.Sprintf("classifier.%d.%s", k, what) }
		var c classifierCase
		c.text, err = f.String(name("text"))
		if err == nil {
			c.label, err = f.String(name("label"))
		}
		if err == nil {
			c.probs, err = f.Float32s(name("probs"))
		}
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	return cases
}

// checkPrediction parses one output line: valid JSON, exactly the keys
// "label" then "probs", the probabilities keyed by the labels in the file's
// order, each within the goldens' tolerance, and the golden label.
func checkPrediction(t *testing.T, line string, want classifierCase) {
	t.Helper()
	var got struct {
		Label string
		Probs map[string]float64
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if got.Label != want.label {
		t.Errorf("%q: label %q, golden %q", want.text, got.Label, want.label)
	}
	for i, label := range goldenLabels {
		p, ok := got.Probs[label]
		if g := float64(want.probs[i]); !ok || math.Abs(p-g) > 1e-4+1e-4*g {
			t.Errorf("%q: probs[%q] = %v, golden %v", want.text, label, p, g)
		}
	}
	// The strings in order: "label", its value, "probs", the labels.
	var strs []string
	for d := json.NewDecoder(strings.NewReader(line)); ; {
		token, err := d.Token()
		if err != nil {
			break
		}
		if s, ok := token.(string); ok {
			strs = append(strs, s)
		}
	}
	if len(strs) != 7 || strs[0] != "label" || strs[2] != "probs" || !slices.Equal(strs[3:], goldenLabels) {
		t.Errorf("%q: want the keys label, probs and in probs %v, in that order", line, goldenLabels)
	}
}

func TestClassifyText(t *testing.T) {
	for _, c := range classifierCases(t) {
		code, out, errOut := runCLI("classify", "--model", goldenClassifier, "--text", c.text, "--threads", "1")
		if code != 0 || errOut != "" || strings.Count(out, "\n") != 1 {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q; want one line", c.text, code, out, errOut)
		}
		checkPrediction(t, out, c)
	}
}

// TestClassifyJSONL: a line per non-empty input line, in order; other keys
// ignored; with a "label" on every line, the accuracy and confusion matrix on
// stderr; with some lines unlabeled, a note instead.
func TestClassifyJSONL(t *testing.T) {
	cases := classifierCases(t)
	var labeled, unlabeled strings.Builder
	for i, c := range cases {
		label := c.label
		if i == 1 {
			label = "gamma" // one wrong: golden says alpha
		}
		item, _ := json.Marshal(map[string]any{"text": c.text, "label": label, "id": i})
		labeled.Write(append(item, '\n'))
		item, _ = json.Marshal(map[string]any{"text": c.text})
		unlabeled.Write(append(item, "\r\n\n  \n"...))
	}
	if cases[1].label != "alpha" {
		t.Fatalf("golden case 1 is %q: the expected confusion matrix below assumes alpha", cases[1].label)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "labeled.jsonl")
	os.WriteFile(path, []byte(labeled.String()), 0o644)

	code, out, errOut := runCLI("classify", "--model", goldenClassifier, "--jsonl", path)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != len(cases) {
		t.Fatalf("exit %d, %d lines, stderr %q", code, len(lines), errOut)
	}
	for i, line := range lines {
		checkPrediction(t, line, cases[i])
	}
	// The golden labels are alpha, alpha, alpha, δέλτα, beta; line 1 says gamma.
	want := "accuracy: 4/5 = 80.0%\n" +
		"true \\ predicted  alpha  beta  gamma  δέλτα\n" +
		"alpha                 2     0      0      0\n" +
		"beta                  0     1      0      0\n" +
		"gamma                 1     0      0      0\n" +
		"δέλτα                 0     0      0      1\n"
	if errOut != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
	}

	code, out2, errOut := runCLIWithInput(unlabeled.String(), "classify", "--model", goldenClassifier, "--jsonl", "-")
	if code != 0 || out2 != out || errOut != "" {
		t.Errorf("unlabeled from stdin: exit %d, stderr %q, stdout %q; want the labeled run's stdout", code, errOut, out2)
	}
	mixed := strings.SplitAfterN(labeled.String(), "\n", 2)[0] + unlabeled.String()
	if code, _, errOut := runCLIWithInput(mixed, "classify", "--model", goldenClassifier, "--jsonl", "-"); code != 0 || errOut != "no accuracy: 1 of 6 lines have a \"label\"\n" {
		t.Errorf("some lines labeled: exit %d, stderr %q", code, errOut)
	}
}

func TestClassifyErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(content), 0o644)
		return path
	}
	fits, long := strings.Repeat("a", 63), strings.Repeat("a", 64) // BOS and 63 or 64 ids: one a each
	if code, _, errOut := runCLI("classify", "--model", goldenClassifier, "--text", fits); code != 0 {
		t.Errorf("a text that fills the context exactly: exit %d, stderr %q", code, errOut)
	}
	good := `{"text": "a"}` + "\n"
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--model", goldenModel, "--text", "x"}, 1, goldenModel + ": not a classifier (no llama.classifier.output_labels): use goengine generate or chat"},
		{[]string{"--model", goldenClassifier, "--text", long}, 1, "--text: 65 tokens, longer than the context of 64"},
		{[]string{"--model", goldenClassifier, "--jsonl", file("long.jsonl", good+`{"text": "`+long+`"}`)}, 1, "long.jsonl:2: 65 tokens, longer than the context of 64"},
		{[]string{"--model", goldenClassifier, "--text", "bad \xff"}, 2, "--text: the text is not valid UTF-8 (byte 4 is 0xff)"},
		{[]string{"--model", goldenClassifier, "--jsonl", file("utf8.jsonl", good+"\n"+`{"text": "r`+"\xf6"+`bot"}`)}, 1, "utf8.jsonl:3: not valid UTF-8 (byte 11 of the line is 0xf6)"},
		{[]string{"--model", goldenClassifier, "--jsonl", file("json.jsonl", good+`{"text": "a"`)}, 1, "json.jsonl:2: not valid JSON (unexpected end of JSON input)"},
		{[]string{"--model", goldenClassifier, "--jsonl", file("two.jsonl", `{"text": "a"} {"text": "b"}`)}, 1, "two.jsonl:1: not valid JSON (invalid character '{' after top-level value)"},
		{[]string{"--model", goldenClassifier, "--jsonl", file("notext.jsonl", `{"txt": "a"}`)}, 1, `notext.jsonl:1: expected an object with a "text" string`},
		{[]string{"--model", goldenClassifier, "--jsonl", file("number.jsonl", `{"text": 5}`)}, 1, `number.jsonl:1: expected an object with a "text" string`},
		{[]string{"--model", goldenClassifier, "--jsonl", file("null.jsonl", `{"text": null}`)}, 1, `null.jsonl:1: expected an object with a "text" string`},
		{[]string{"--model", goldenClassifier, "--jsonl", file("array.jsonl", `["a"]`)}, 1, `array.jsonl:1: expected an object with a "text" string`},
		{[]string{"--model", goldenClassifier, "--jsonl", file("label.jsonl", `{"text": "a", "label": 1}`)}, 1, `label.jsonl:1: "label" is not a string`},
		{[]string{"--model", goldenClassifier, "--jsonl", file("zeta.jsonl", good+`{"text": "a", "label": "zeta"}`)}, 1,
			`zeta.jsonl:2: label "zeta" is not one the model was trained on (labels: alpha, beta, gamma, δέλτα)`},
		{[]string{"--model", goldenClassifier, "--jsonl", filepath.Join(dir, "missing.jsonl")}, 1, "--jsonl: open " + filepath.Join(dir, "missing.jsonl") + ": no such file or directory"},
		{[]string{"--model", goldenClassifier}, 2, "give --text or --jsonl, exactly one of them"},
		{[]string{"--model", goldenClassifier, "--text", "a", "--jsonl", file("ok.jsonl", good)}, 2, "give --text or --jsonl, exactly one of them"},
		{[]string{"--model", goldenClassifier, "--jsonl", ""}, 2, "--jsonl needs a file name, or - for stdin"},
		{[]string{"--text", "a"}, 2, "--model is required"},
		{[]string{"--model", goldenClassifier, "--text", "a", "--threads", "0"}, 2, "--threads must be at least 1, found 0"},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(append([]string{"classify"}, c.args...)...)
		atLine := strings.Contains(c.want, ".jsonl:") && !strings.HasPrefix(c.want, "--") // FILE:LINE: ...
		if atLine {
			c.want = filepath.Join(dir, c.want)
		}
		if code != c.code || errOut != "goengine classify: "+c.want+"\n" {
			t.Errorf("classify %q: exit %d, stderr %q; want exit %d and the one line %q", c.args, code, errOut, c.code, "goengine classify: "+c.want)
		}
		printed := 0 // the lines before the bad one are classified: those that are good
		if atLine {
			printed = strings.Count(mustRead(t, c.args[3]), good)
		}
		if strings.Count(out, "\n") != printed || strings.Count(out, `{"label": "alpha"`) != printed {
			t.Errorf("classify %q: stdout %q: want %d lines, the good ones before the bad one", c.args, out, printed)
		}
	}
}

// TestLanguageCommandsRefuseAClassifier: generate, chat and serve name
// goengine classify rather than sample from a classifier's body.
func TestLanguageCommandsRefuseAClassifier(t *testing.T) {
	want := goldenClassifier + ": a classifier (labels alpha, beta, gamma, δέλτα), not a language model: use goengine classify\n"
	for _, args := range [][]string{
		{"generate", "--model", goldenClassifier, "--prompt", "x", "--seed", "1"},
		{"chat", "--model", goldenClassifier, "--seed", "1"},
		{"serve", "--model", goldenClassifier, "--addr", "127.0.0.1:0"},
	} {
		code, out, errOut := runCLIWithInput("hello\n", args...)
		if code != 1 || out != "" || errOut != "goengine "+args[0]+": "+want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, errOut, want)
		}
	}
	code, out, errOut := runCLI("info", "--model", goldenClassifier)
	if code != 0 || !strings.Contains(out, "classifier      4 labels: alpha, beta, gamma, δέλτα") || !strings.Contains(out, "cls.output.weight") {
		t.Errorf("info: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	if _, out, _ := runCLI("info", "--model", goldenModel); strings.Contains(out, "classifier") {
		t.Errorf("info of a language model mentions a classifier:\n%s", out)
	}
}
