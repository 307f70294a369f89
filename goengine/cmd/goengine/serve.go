package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gollm/goengine/serve"
	"gollm/goengine/tokenizer"
)

// serveCmd runs the OpenAI-compatible HTTP server until SIGINT or SIGTERM.
func serveCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	modelPath := fs.String("model", "", "model file (.gguf)")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on; 0.0.0.0:8080 for other machines too (there is no authentication)")
	parallel := fs.Int("parallel", 4, "requests generating at once, each with its own KV cache; their decode steps run as one batch")
	queue := fs.Int("queue", 8, "requests waiting for a free slot before the server answers 429")
	name := fs.String("name", "", "model id clients use (default: the file name without .gguf)")
	chatFormat := chatFormatFlag(fs)
	threads := threadsFlag(fs)
	noUI := fs.Bool("no-ui", false, "serve the API only, without the chat page at /")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long in-flight requests may finish before they are cancelled")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return usagef("--model is required")
	}
	if *parallel < 1 || *queue < 0 {
		return usagef("--parallel must be at least 1 and --queue at least 0")
	}
	loaded, err := loadLanguageModel(*modelPath, *threads)
	if err != nil {
		return err
	}
	defer loaded.file.Close()
	if *name == "" {
		*name = strings.TrimSuffix(filepath.Base(*modelPath), ".gguf")
	}
	chat, noChat := tokenizer.ChatFromGGUF(loaded.file, loaded.tokenizer, *chatFormat)
	if noChat != nil && *chatFormat != "" {
		return usageError{noChat}
	}
	if noChat != nil { // a base model serves completions all the same
		fmt.Fprintf(stderr, "goengine serve: no chat endpoint: %v\n", noChat)
	}
	server := serve.New(loaded.model, loaded.tokenizer, serve.Options{Name: *name, Parallel: *parallel, Queue: *queue,
		Chat: chat, NoChat: noChat, NoUI: *noUI, Log: log.New(stderr, "", log.LstdFlags)}) // a line per request, stamped with the time
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	httpServer := &http.Server{
		Handler:           server,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // the whole request, body included
		IdleTimeout:       120 * time.Second,
		// No WriteTimeout: a stream lasts as long as its generation. Each write
		// has its own deadline instead (serve.Options.WriteTimeout).
	}
	// Scripts read the API's URL as the line's fourth word: anything new goes after it.
	page := ""
	if !*noUI {
		page = fmt.Sprintf(", chat page at http://%s/", listener.Addr())
	}
	fmt.Fprintf(stdout, "serving %s on http://%s/v1 (%d parallel, %d queued)%s\n", *name, listener.Addr(), *parallel, *queue, page)
	if tcp, ok := listener.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		fmt.Fprintf(stderr, "goengine serve: listening on %s, beyond this machine, with no authentication: whoever reaches it can use the model\n", listener.Addr())
	}
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}

	signals, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(listener) }()
	select {
	case err := <-served:
		return err
	case <-signals.Done():
	}
	// Stop accepting, let in-flight requests finish within the grace period,
	// then end their generations and close what is left.
	fmt.Fprintf(stderr, "shutting down: waiting up to %v for %d requests\n", *grace, server.Stats().Active+server.Stats().Queued)
	ctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := httpServer.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		server.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if httpServer.Shutdown(ctx) != nil {
			httpServer.Close()
		}
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(stderr, "stopped")
	return nil
}
