package serve

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"net/http"
)

// chatPage is the chat page served at GET /: one self-contained file that
// talks only to this server's /v1/chat/completions, /v1/models and /health.
//
//go:embed chat.html
var chatPage []byte

// chatPageCSP allows the page its own inline script and style, by their
// hashes, and its fetches to this server; nothing else loads or runs.
var chatPageCSP = mustPageCSP(chatPage)

// pageCSP is the Content-Security-Policy of a page with one inline <script>
// and one inline <style>. Hashes instead of 'unsafe-inline' keep any markup
// that ever slips into the page (a model's reply) from running as script.
func pageCSP(page []byte) (string, error) {
	script, err := inlineHash(page, "script")
	if err != nil {
		return "", err
	}
	style, err := inlineHash(page, "style")
	if err != nil {
		return "", err
	}
	return "default-src 'none'; script-src " + script + "; style-src " + style +
		"; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", nil
}

// inlineHash is the CSP source ('sha256-...') of the text of the page's only
// <tag> element, which must be written exactly as "<tag>...</tag>".
func inlineHash(page []byte, tag string) (string, error) {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	if n := bytes.Count(page, []byte("<"+tag)); n != 1 {
		return "", fmt.Errorf("chat page: want one <%s> element, found %d", tag, n)
	}
	_, rest, ok := bytes.Cut(page, open)
	text, _, closed := bytes.Cut(rest, end)
	if !ok || !closed {
		return "", fmt.Errorf("chat page: want <%s> without attributes, closed by </%s>", tag, tag)
	}
	sum := sha256.Sum256(text)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'", nil
}

// mustPageCSP is pageCSP for the embedded page, which a test checks: an
// error here is a mistake in chat.html, caught before any server starts.
func mustPageCSP(page []byte) string {
	csp, err := pageCSP(page)
	if err != nil {
		panic(err)
	}
	return csp
}

func (s *Server) ui(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", chatPageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache") // a rebuilt binary's page, not yesterday's
	w.Write(chatPage)
}
