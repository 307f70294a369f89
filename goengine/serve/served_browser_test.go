//go:build unix

package serve

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestServedChatPageInBrowser is TestChatPageInBrowser end to end, as a user
// meets the page: the goengine binary (GOLLM_GOENGINE, or built here) serving
// the chat model GOLLM_CHAT_MODEL on a free loopback port, one slot and no
// queue. `make test-browser` runs it on demo/chat.gguf. Unix only: it pauses
// the server with SIGSTOP, because the demo model writes a whole reply within
// a millisecond, long before a browser can press Stop or send a second request.
func TestServedChatPageInBrowser(t *testing.T) {
	requireBrowserTest(t)
	modelPath := os.Getenv("GOLLM_CHAT_MODEL")
	if modelPath == "" {
		t.Skip("set GOLLM_CHAT_MODEL to a chat model (.gguf; make demo-chat writes demo/chat.gguf) to drive the page goengine serve gives")
	}
	wd := startBrowser(t) // first: it skips without chromedriver, before a build
	p := startServe(t, goengineBinary(t), "--model", modelPath, "--parallel", "1", "--queue", "0")
	h := &httptest.Server{URL: p.url} // all that post and health read
	openPage(t, wd, h)
	checkGreedyReply(t, wd, h, "hello there", 0)

	// Stop while the reply is still to come: the request is the page's, on a
	// connection the server reads when it resumes; the slot is free after.
	p.pause(t)
	wd.typeInto(t, "#input", "go on\uE007")
	wd.waitScript(t, `return !document.getElementById("stop").disabled`)
	stopReply(t, wd)
	if got := wd.script(t, `return document.getElementById("input").value`); got != "go on" {
		t.Errorf("input after Stop before any token: %q, want the message back", got)
	}
	p.resume(t)
	waitFor(t, func() bool { return health(t, h).Active == 0 })
	shot(t, wd)

	checkNewChat(t, wd)
	checkBusyServer(t, wd, p, h)
	checkGivenBack(t, wd, "are you there?")
	waitFor(t, func() bool { return health(t, h).Active == 0 })
	checkContextOverflow(t, wd, h)
}

// checkBusyServer sends a message from the page while a stream holds the
// server's one slot, paused in its middle, and checks the page says the server
// is busy. On resume the page's request races the stream's last tokens, and a
// fast model's can win (the small demo models write a few dozen in a couple of
// milliseconds): then the page shows a reply, and it starts again.
func checkBusyServer(t *testing.T, wd *webDriver, p *servedProcess, h *httptest.Server) {
	t.Helper()
	const tries = 10
	body, tokens := longestCompletion(t, h)
	if tokens < 16 {
		t.Fatalf("the model's longest completion found is %d tokens: too few to hold the slot while the page sends", tokens)
	}
	t.Logf("the slot is held by a %d-token completion: %s", tokens, body)
	for try := 1; ; try++ {
		holder := p.pauseMidStream(t, body, tokens)
		busy := sendWhileBusy(t, wd, "are you there?", func() {
			wd.waitScript(t, `return !document.getElementById("stop").disabled`)
			time.Sleep(200 * time.Millisecond) // for Chromium to write the request to the paused server
			p.resume(t)
		})
		holder.finish(t)
		if busy {
			return
		}
		if try == tries {
			t.Fatalf("in %d tries the stream always ended before the page's request was read; the page says %q", tries, wd.script(t, `return document.body.innerText`))
		}
		t.Logf("the stream ended before the page's request was read: again")
		checkNewChat(t, wd)
	}
}

// goengineBinary is GOLLM_GOENGINE, or else the command built from this
// checkout into the test's temporary directory.
func goengineBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("GOLLM_GOENGINE"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "goengine")
	if out, err := exec.Command("go", "build", "-o", bin, "gollm/goengine/cmd/goengine").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// servedProcess is a `goengine serve` started by a test, killed at its end.
type servedProcess struct {
	cmd *exec.Cmd
	url string        // http://127.0.0.1:PORT
	log *lockedBuffer // its stderr: a line per request
}

// startServe runs bin serve on a port the system picks, with args, and reads
// the URL from its startup line, whose fourth word it is (for scripts too).
func startServe(t *testing.T, bin string, args ...string) *servedProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	// Two Ps, whatever this machine or GOMAXPROCS here: with one, a stream's
	// goroutines keep it busy and the network is polled too seldom to read a
	// request that comes in meanwhile, so a request sent to a busy server would
	// be read only once it is free.
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	p := &servedProcess{cmd: cmd, log: &lockedBuffer{}}
	cmd.Stderr = p.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // SIGKILL ends it paused or not
		cmd.Wait()
		if t.Failed() {
			t.Logf("goengine serve's log:\n%s", strings.Join(p.log.lines(), "\n"))
		}
	})
	first := make(chan string, 1)
	go func() { // the first line, then the rest unread: serve prints nothing more there
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		first <- line
	}()
	select {
	case line := <-first:
		words := strings.Fields(line)
		if len(words) < 4 || !strings.HasPrefix(words[3], "http://") || !strings.HasSuffix(words[3], "/v1") {
			t.Fatalf("goengine serve printed %q, not its URL as the fourth word; its log:\n%s", line, strings.Join(p.log.lines(), "\n"))
		}
		p.url = strings.TrimSuffix(words[3], "/v1")
	case <-time.After(time.Minute):
		t.Fatal("goengine serve printed no address within a minute")
	}
	return p
}

// pause stops the whole process (SIGSTOP): connections still open, in the
// kernel, and their requests wait there until resume.
func (p *servedProcess) pause(t *testing.T) { p.signal(t, syscall.SIGSTOP) }

func (p *servedProcess) resume(t *testing.T) { p.signal(t, syscall.SIGCONT) }

func (p *servedProcess) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("goengine serve: %v: %v", sig, err)
	}
}

// pauseMidStream takes the server's one slot with body, a streaming completion
// of tokens, and pauses the server while most of them are still to come, so
// that on resume the slot stays taken for more decode steps than a request
// needs to be refused. A pause can come too late (the demo model writes a
// token in a tenth of a millisecond): then it resumes and tries again.
func (p *servedProcess) pauseMidStream(t *testing.T, body string, tokens int) *eventCounter {
	t.Helper()
	const tries = 20
	for range tries {
		s := p.stream(t, "/v1/completions", body)
		<-s.first // a token is out: the request is generating, in the slot
		p.pause(t)
		time.Sleep(50 * time.Millisecond) // for what was written before the pause to be read
		select {
		case <-s.ended:
		default:
			if s.events.Load() <= int64(tokens/4) {
				return s
			}
		}
		t.Logf("the pause came after %d events of %d: again", s.events.Load(), tokens)
		p.resume(t)
		s.finish(t)
	}
	t.Fatalf("%d pauses came after a quarter of a %d-token stream", tries, tokens)
	return nil
}

// longestCompletion is the longest of a few completions the server gives the
// same each time (greedy, then seeded at temperature 2), up to 200 tokens, as
// a streaming request, and its length: a chat model soon writes its end of
// text, so the longest of them holds the slot longest.
func longestCompletion(t *testing.T, h *httptest.Server) (body string, tokens int) {
	t.Helper()
	const maxTokens = 200
	requests := []string{fmt.Sprintf(`{"prompt": "a", "max_tokens": %d, "temperature": 0`, maxTokens)}
	for seed := range 40 {
		requests = append(requests, fmt.Sprintf(`{"prompt": "a", "max_tokens": %d, "temperature": 2, "seed": %d`, maxTokens, seed))
	}
	for _, request := range requests {
		_, resp := post(t, h, "/v1/completions", request+"}")
		if n, _ := field(resp, "usage", "completion_tokens").(float64); int(n) > tokens {
			body, tokens = request+`, "stream": true}`, int(n)
		}
		if tokens == maxTokens {
			break
		}
	}
	return body, tokens
}

// eventCounter reads a server-sent event stream as it comes.
type eventCounter struct {
	events atomic.Int64  // data lines read
	first  chan struct{} // closed at the first (or at the end)
	ended  chan struct{} // closed at the end
	last   string        // the last data line, once ended
}

// stream posts a streaming request and counts its events in the background.
func (p *servedProcess) stream(t *testing.T, path, body string) *eventCounter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "POST", p.url+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		t.Fatalf("POST %s %s: status %d", path, body, resp.StatusCode)
	}
	s := &eventCounter{first: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		defer resp.Body.Close()
		scanner := bufio.NewScanner(resp.Body)
		for scanner.Scan() {
			if data, ok := strings.CutPrefix(scanner.Text(), "data: "); ok {
				if s.events.Add(1) == 1 {
					close(s.first)
				}
				s.last = data
			}
		}
		if s.events.Load() == 0 {
			close(s.first)
		}
	}()
	return s
}

// finish waits for the stream's end and checks it ended as a stream should:
// a pause does not cut it.
func (s *eventCounter) finish(t *testing.T) {
	t.Helper()
	select {
	case <-s.ended:
	case <-time.After(20 * time.Second):
		t.Fatalf("the stream has not ended after %d events", s.events.Load())
	}
	if s.last != "[DONE]" {
		t.Errorf("the stream ended with %q after %d events, not [DONE]", s.last, s.events.Load())
	}
}
