package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// With auth off, the operator routes refuse callers that are not on a
// loopback address; everything else passes.
func TestGuardAuthOffLoopbackOnly(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TokenKey = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=" // "a"*32
	a, err := New(cfg, Deps{Store: &fakeStore{st: EmptyState()}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	g, api := a.Guard(ok, 1<<20), a.Handler(1<<20)
	for _, c := range []struct {
		h            http.Handler
		method, path string
		remote       string
		want         int
	}{
		{g, "PUT", "/nacos/v1/ns/ferry/offline?ip=1.2.3.4", "10.1.2.3:5000", 403},
		{g, "PUT", "/nacos/v2/ns/ferry/offline?ip=1.2.3.4", "[2001:db8::1]:5000", 403},
		{g, "PUT", "/nacos/v1/ns/ferry/offline?ip=1.2.3.4", "127.0.0.1:5000", 200},
		{g, "PUT", "/nacos/v1/ns/ferry/offline?ip=1.2.3.4", "[::1]:5000", 200},
		{g, "GET", "/nacos/v2/core/loader/current", "10.1.2.3:5000", 403},
		{g, "POST", "/nacos/v1/ns/instance?serviceName=s&ip=1.2.3.4&port=1", "10.1.2.3:5000", 200},
		{g, "GET", "/nacos/v1/cs/configs?dataId=d&group=g", "10.1.2.3:5000", 200},
		{api, "POST", "/nacos/v1/auth/users?username=u&password=p", "10.1.2.3:5000", 403},
		{api, "GET", "/nacos/v1/auth/roles?search=accurate", "10.1.2.3:5000", 403},
		{api, "POST", "/nacos/v1/auth/users?username=u&password=p", "127.0.0.1:5000", 200},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		r.RemoteAddr = c.remote
		w := httptest.NewRecorder()
		c.h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s %s from %s: %d %s, want %d", c.method, c.path, c.remote, w.Code, w.Body, c.want)
		}
		if w.Code == 403 && !strings.Contains(w.Body.String(), "loopback") {
			t.Errorf("%s: refusal does not say why: %s", c.path, w.Body)
		}
	}
}
