package serve

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestChatPage: GET / is the embedded page, as HTML, under a CSP that allows
// exactly its inline script and style, by hashes computed here on their own.
func TestChatPage(t *testing.T) {
	_, h := goldenServer(t, Options{})
	resp, err := http.Get(h.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET /: status %d, headers %v", resp.StatusCode, resp.Header)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, tag := range []string{"script", "style"} {
		m := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`).FindSubmatch(page)
		if m == nil {
			t.Fatalf("the page has no <%s>", tag)
		}
		sum := sha256.Sum256(m[1])
		want := tag + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "';"
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q: want %q", csp, want)
		}
	}
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
	text := string(page)
	for _, want := range []string{"/v1/chat/completions", "/v1/models", "/health", `name="viewport"`, "AbortController", "stream: true"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not mention %q", want)
		}
	}
	// Offline, and no model text as markup: no external URL, no innerHTML,
	// no inline handlers (the CSP's hashes would block them anyway).
	for _, bad := range []string{"http://", "https://", "innerHTML", "onclick=", "style=\"", "\r"} {
		if strings.Contains(text, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
}

// TestChatPageRoutes: the page is at / only; --no-ui (NoUI) leaves / to the
// JSON 404 of any unknown path.
func TestChatPageRoutes(t *testing.T) {
	_, withUI := goldenServer(t, Options{})
	_, noUI := goldenServer(t, Options{NoUI: true})
	for _, c := range []struct {
		h      string
		method string
		path   string
		status int
	}{
		{withUI.URL, "GET", "/", 200},
		{withUI.URL, "HEAD", "/", 200},
		{withUI.URL, "POST", "/", 405},
		{withUI.URL, "GET", "/index.html", 404},
		{withUI.URL, "GET", "/chat/", 404},
		{noUI.URL, "GET", "/", 404},
		{noUI.URL, "GET", "/health", 200},
	} {
		req, _ := http.NewRequest(c.method, c.h+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s (NoUI %v): status %d, want %d", c.method, c.path, c.h == noUI.URL, resp.StatusCode, c.status)
		}
		if c.status >= 400 && resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: a %d as %q, want the JSON error", c.method, c.path, c.status, resp.Header.Get("Content-Type"))
		}
	}
}

// TestPageCSPNeedsOneInlineElement: a page edited into two scripts, or a
// script with attributes, is refused rather than given a wrong hash.
func TestPageCSPNeedsOneInlineElement(t *testing.T) {
	for _, page := range []string{
		"<style>a</style><script>1</script><script>2</script>",
		"<style>a</style><script type=module>1</script>",
		"<script>1</script>",
		"<style>a</style><script>1",
	} {
		if csp, err := pageCSP([]byte(page)); err == nil {
			t.Errorf("pageCSP(%q) = %q, want an error", page, csp)
		}
	}
	if _, err := pageCSP([]byte("<style>a</style><script>1</script>")); err != nil {
		t.Error(err)
	}
}
