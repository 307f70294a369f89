package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChatPageInBrowser drives the chat page in headless Chromium through
// chromedriver's WebDriver protocol (plain HTTP: no client library). It is
// outside CI: it runs only with GOLLM_BROWSER_TEST=1 and chromedriver on the
// PATH (Debian: apt-get install chromium chromium-driver), and leaves a
// phone-width screenshot in a temporary directory it names. It serves a random
// model in-process; TestServedChatPageInBrowser does the same against the
// goengine binary and a trained chat model.
func TestChatPageInBrowser(t *testing.T) {
	requireBrowserTest(t)
	s, _ := longServer(t, Options{Parallel: 1}) // end of text never wins: a reply as long as asked
	h := httptest.NewServer(slowStreams{s})
	t.Cleanup(h.Close)
	wd := startBrowser(t)
	openPage(t, wd, h)
	checkGreedyReply(t, wd, h, "hello there", 12)

	// Stop during a long reply frees the slot.
	wd.script(t, `document.getElementById("max_tokens").value = ""`)
	wd.typeInto(t, "#input", "go on\uE007")
	wd.waitScript(t, `return document.querySelectorAll(".assistant").length == 2 && document.querySelectorAll(".assistant")[1].textContent.length > 0`)
	stopReply(t, wd)
	waitFor(t, func() bool { return health(t, h).Active == 0 })
	if n := s.Stats().GeneratedTokens; n >= 12+1000 {
		t.Errorf("%d tokens generated: Stop should end the reply within a few", n)
	}
	shot(t, wd)

	checkNewChat(t, wd)
	held := <-s.sessions
	if !sendWhileBusy(t, wd, "are you there?", func() {}) {
		t.Errorf("with every slot taken, the page does not say the server is busy: %q", wd.script(t, `return document.body.innerText`))
	}
	checkGivenBack(t, wd, "are you there?")
	s.sessions <- held
	checkContextOverflow(t, wd, h)
}

func requireBrowserTest(t *testing.T) {
	t.Helper()
	if os.Getenv("GOLLM_BROWSER_TEST") != "1" {
		t.Skip("set GOLLM_BROWSER_TEST=1 to run the chat page in headless Chromium")
	}
}

// openPage loads the chat page of the server at h and waits until it shows the
// context length from /health: the page has read the server.
func openPage(t *testing.T, wd *webDriver, h *httptest.Server) {
	t.Helper()
	wd.call(t, "POST", "/url", map[string]any{"url": h.URL + "/"})
	wd.waitScript(t, fmt.Sprintf(`return document.getElementById("model").textContent.includes("context %d")`, health(t, h).ContextLength))
}

// checkGreedyReply sends message with Enter as the conversation's first turn,
// at temperature 0 and maxTokens (0: the page's default, the rest of the
// context), and checks the reply that streams in is the API's greedy reply to
// the same conversation, not empty, and followed by its speed.
func checkGreedyReply(t *testing.T, wd *webDriver, h *httptest.Server, message string, maxTokens int) {
	t.Helper()
	request := map[string]any{"messages": []map[string]string{{"role": "user", "content": message}}, "temperature": 0}
	pageMax := "" // the page's field: empty for its default
	if maxTokens > 0 {
		request["max_tokens"], pageMax = maxTokens, fmt.Sprint(maxTokens)
	}
	wd.script(t, fmt.Sprintf(`document.getElementById("temperature").value = "0"; document.getElementById("max_tokens").value = %q`, pageMax))
	wd.typeInto(t, "#input", message+"\uE007") // U+E007: WebDriver's Enter key
	wd.waitScript(t, `return document.getElementById("stop").disabled && document.querySelectorAll(".assistant").length == 1`)
	got := wd.script(t, `return document.querySelector(".assistant").textContent`)
	body, _ := json.Marshal(request)
	code, resp := post(t, h, "/v1/chat/completions", string(body))
	want := field(resp, "choices", 0, "message", "content")
	if code != 200 || got == "" || got != want {
		t.Errorf("the page shows %q; the API's greedy reply (status %d) is %q", got, code, want)
	}
	if speed := wd.script(t, `return document.getElementById("speed").textContent`); !strings.Contains(speed, "tokens/s") {
		t.Errorf("no speed after the reply: %q", speed)
	}
}

// stopReply presses Stop on the reply in progress and waits for the page to
// say so.
func stopReply(t *testing.T, wd *webDriver) {
	t.Helper()
	wd.click(t, "#stop")
	wd.waitScript(t, `return document.body.textContent.includes("Stopped.")`)
}

// checkNewChat checks New chat empties the conversation.
func checkNewChat(t *testing.T, wd *webDriver) {
	t.Helper()
	wd.click(t, "#new")
	if n := wd.script(t, `return String(document.querySelectorAll(".turn").length)`); n != "0" {
		t.Errorf("%s turns after New chat, want 0", n)
	}
}

// sendWhileBusy sends message to a server whose every slot is taken, runs
// sent once the keys are typed (the page's request may be answered already),
// waits for the request's end and reports whether the page said the server
// is busy.
func sendWhileBusy(t *testing.T, wd *webDriver, message string, sent func()) bool {
	t.Helper()
	wd.script(t, `document.getElementById("input").value = ""`)
	wd.typeInto(t, "#input", message+"\uE007")
	sent()
	wd.waitScript(t, `return document.getElementById("stop").disabled`)
	return wd.script(t, `return [...document.querySelectorAll(".error")].some(e => e.textContent.includes("server is busy"))`) == "true"
}

// checkGivenBack checks a message the server refused goes back to the input,
// and out of the conversation (empty before it).
func checkGivenBack(t *testing.T, wd *webDriver, message string) {
	t.Helper()
	wd.waitScript(t, `return document.querySelectorAll(".turn").length === 0`)
	if got := wd.script(t, `return document.getElementById("input").value`); got != message {
		t.Errorf("input after a refused request: %q, want the message back", got)
	}
}

// checkContextOverflow checks a message longer than the context of the server
// at h (a token a word at least) is said in words.
func checkContextOverflow(t *testing.T, wd *webDriver, h *httptest.Server) {
	t.Helper()
	wd.script(t, fmt.Sprintf(`document.getElementById("input").value = "word ".repeat(%d)`, health(t, h).ContextLength+1))
	wd.click(t, "#send")
	wd.waitScript(t, `return [...document.querySelectorAll(".error")].some(e => e.textContent.includes("no longer fits the model's context"))`)
}

// slowStreams serves h with a pause before each write, a token's event in a
// stream: the small model would otherwise finish a 2,000-token reply before
// the browser's Stop could be clicked.
type slowStreams struct{ h http.Handler }

func (s slowStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.h.ServeHTTP(slowWriter{w}, r)
}

type slowWriter struct{ http.ResponseWriter }

func (w slowWriter) Write(b []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's flush and
// deadlines.
func (w slowWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// webDriver is one chromedriver session.
type webDriver struct{ base string } // http://127.0.0.1:PORT/session/ID

// startBrowser starts chromedriver on a free port and a headless Chromium at
// phone width in it, both ended with the test.
func startBrowser(t *testing.T) *webDriver {
	t.Helper()
	driver, err := exec.LookPath("chromedriver")
	if err != nil {
		t.Skip("no chromedriver on the PATH (apt-get install chromium chromium-driver)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(driver, fmt.Sprintf("--port=%d", port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	root := &webDriver{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	waitFor(t, func() bool {
		resp, err := http.Get(root.base + "/status")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	chrome := map[string]any{"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=390,844"}}
	if bin, err := exec.LookPath("chromium"); err == nil {
		chrome["binary"] = bin
	}
	var session struct {
		SessionID string `json:"sessionId"`
	}
	root.decode(t, root.call(t, "POST", "/session", map[string]any{"capabilities": map[string]any{
		"alwaysMatch": map[string]any{"browserName": "chrome", "goog:chromeOptions": chrome}}}), &session)
	wd := &webDriver{base: root.base + "/session/" + session.SessionID}
	t.Cleanup(func() { wd.call(t, "DELETE", "", nil) })
	return wd
}

// call sends one WebDriver command and returns its "value".
func (wd *webDriver) call(t *testing.T, method, path string, body any) json.RawMessage {
	t.Helper()
	var in bytes.Buffer
	if body != nil {
		json.NewEncoder(&in).Encode(body)
	}
	req, _ := http.NewRequest(method, wd.base+path, &in)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out struct{ Value json.RawMessage }
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("webdriver %s %s: status %d: %s", method, path, resp.StatusCode, out.Value)
	}
	return out.Value
}

func (wd *webDriver) decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("webdriver: %s: %v", raw, err)
	}
}

// script runs JavaScript in the page and returns its result as text.
func (wd *webDriver) script(t *testing.T, js string) string {
	t.Helper()
	var v any
	wd.decode(t, wd.call(t, "POST", "/execute/sync", map[string]any{"script": js, "args": []any{}}), &v)
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// waitScript waits until js returns true.
func (wd *webDriver) waitScript(t *testing.T, js string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for wd.script(t, js) != "true" {
		if time.Now().After(deadline) {
			shot(t, wd)
			t.Fatalf("timed out waiting for %s; the page says %q", js, wd.script(t, `return document.body.innerText`))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (wd *webDriver) element(t *testing.T, css string) string {
	t.Helper()
	var el map[string]string
	wd.decode(t, wd.call(t, "POST", "/element", map[string]any{"using": "css selector", "value": css}), &el)
	for _, id := range el {
		return id
	}
	t.Fatalf("no element %s", css)
	return ""
}

func (wd *webDriver) typeInto(t *testing.T, css, text string) {
	t.Helper()
	wd.call(t, "POST", "/element/"+wd.element(t, css)+"/value", map[string]any{"text": text})
}

func (wd *webDriver) click(t *testing.T, css string) {
	t.Helper()
	wd.call(t, "POST", "/element/"+wd.element(t, css)+"/click", map[string]any{})
}

// shot saves a PNG of the page in a temporary directory that outlives the
// test, for a person to look at.
func shot(t *testing.T, wd *webDriver) {
	t.Helper()
	var b64 string
	wd.decode(t, wd.call(t, "GET", "/screenshot", nil), &b64)
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "gollm-chat-page-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "chat.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
