package registryclient

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

type textServer struct{ hs *http.Server }

func newTextServer(l net.Listener, body string) *textServer {
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) })}
	go hs.Serve(l)
	return &textServer{hs}
}

func (s *textServer) close() { s.hs.Close() }

// logCapture collects log text for assertions.
type logCapture struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

// newCaptureLogger logs to t and into l.
func newCaptureLogger(t testing.TB, l *logCapture) *slog.Logger {
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		l.mu.Lock()
		l.sb.Write(p)
		l.mu.Unlock()
		t.Log(strings.TrimRight(string(p), "\n"))
		return len(p), nil
	}), nil))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
