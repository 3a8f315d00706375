package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// forwardedUA is the User-Agent of a 1.x write one member forwards to the
// member responsible for it. Like Nacos' DistroFilter, a node that receives
// such a request and is not responsible either answers 400 instead of
// forwarding it again (one hop at most; members disagree only while their
// views of the membership converge).
const forwardedUA = "Nacos-Server Ferry"

// relay is a peer's answer to a forwarded request, written back as is.
type relay struct {
	status int
	ctype  string
	body   []byte
}

// responsible returns the member responsible for the beat-kept client at
// ip:port, "" for this node.
func (a *API) responsible(ip string, port int) string {
	return a.deps.Responsibility.Responsible(ip, port)
}

// forward sends r, with every parameter it carried (query and form) in the
// query string, to the member at addr and relays its answer.
func (a *API) forward(r *http.Request, p params, addr string) (any, *apiError) {
	if strings.Contains(r.UserAgent(), "Nacos-Server") {
		return nil, errInvalid(codeParamValidate, "receive invalid redirect request from peer %s", r.RemoteAddr)
	}
	u := url.URL{Scheme: "http", Host: addr, Path: r.URL.Path, RawQuery: p.v.Encode()}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), nil)
	if err != nil {
		return nil, serverError(err)
	}
	for k, vs := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Content-Type", "Connection", "Keep-Alive", "Transfer-Encoding", "Te", "Upgrade":
			continue
		}
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", forwardedUA)
	resp, err := a.forwarder.Do(req)
	if err != nil {
		a.metrics.forwards.WithLabelValues("error").Inc()
		return nil, &apiError{status: http.StatusServiceUnavailable, code: codeServerError, msg: fmt.Sprintf("forward to the responsible member %s: %v", addr, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		a.metrics.forwards.WithLabelValues("error").Inc()
		return nil, &apiError{status: http.StatusServiceUnavailable, code: codeServerError, msg: fmt.Sprintf("forward to the responsible member %s: %v", addr, err)}
	}
	a.metrics.forwards.WithLabelValues("ok").Inc()
	return relay{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: body}, nil
}
