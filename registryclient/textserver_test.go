package registryclient

import (
	"io"
	"net"
	"net/http"
)

type textServer struct{ hs *http.Server }

func newTextServer(l net.Listener, body string) *textServer {
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) })}
	go hs.Serve(l)
	return &textServer{hs}
}

func (s *textServer) close() { s.hs.Close() }
