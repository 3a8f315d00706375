package httpapi

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// toMember is a Responsibility that sends some ips to another member,
// changeable while the test runs.
type toMember struct {
	mu sync.Mutex
	m  map[string]string
}

func (r *toMember) set(ip, addr string) { r.mu.Lock(); r.m[ip] = addr; r.mu.Unlock() }
func (r *toMember) Responsible(ip string, _ int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[ip]
}

// TestForwardToResponsible: a 1.x register, beat and deregister of a
// beat-kept instance another member is responsible for is forwarded to it
// once and its answer relayed; persistent writes are not forwarded; a
// forwarded request is never forwarded again (400, as Nacos' DistroFilter).
func TestForwardToResponsible(t *testing.T) {
	b := newEnv(t, t.TempDir())
	owners := &toMember{m: map[string]string{}}
	a := newEnvWith(t, t.TempDir(), func(d *Deps) { d.Responsibility = owners })
	owners.set("10.0.0.2", strings.TrimPrefix(b.srv.URL, "http://"))

	reg := vals("serviceName", "svc", "ip", "10.0.0.2", "port", "80")
	if body := a.mustOK("POST", "/nacos/v1/ns/instance", reg); body != "ok" {
		t.Fatalf("register via a: %q", body)
	}
	if got := hostsOf(b.list(vals("serviceName", "svc"))); len(got) != 1 || !strings.HasPrefix(got[0], "10.0.0.2:80") {
		t.Fatalf("b = %v, want the forwarded registration", got)
	}
	if got := hostsOf(a.list(vals("serviceName", "svc"))); len(got) != 0 {
		t.Fatalf("a = %v, want nothing registered here", got)
	}
	// A local one stays local.
	a.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "svc", "ip", "10.0.0.1", "port", "80"))
	if got := hostsOf(a.list(vals("serviceName", "svc"))); len(got) != 1 {
		t.Fatalf("a = %v", got)
	}
	// A beat (light) is answered by b: known there.
	if body := a.mustOK("PUT", "/nacos/v1/ns/instance/beat", vals("serviceName", "svc", "ip", "10.0.0.2", "port", "80")); !strings.Contains(body, `"code":10200`) {
		t.Fatalf("forwarded beat: %s", body)
	}
	// v2 answers relay b's envelope.
	if body := a.mustOK("PUT", "/nacos/v2/ns/instance/beat", vals("serviceName", "svc", "ip", "10.0.0.2", "port", "80")); !strings.Contains(body, `"code":10200`) {
		t.Fatalf("forwarded v2 beat: %s", body)
	}
	a.mustOK("DELETE", "/nacos/v1/ns/instance", vals("serviceName", "svc", "ip", "10.0.0.2", "port", "80"))
	if got := hostsOf(b.list(vals("serviceName", "svc"))); len(got) != 0 {
		t.Fatalf("b after the forwarded deregister = %v", got)
	}
	// Persistent instances go through Raft, never forwarded by Distro.
	a.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "pers", "ip", "10.0.0.2", "port", "81", "ephemeral", "false"))
	if got := hostsOf(a.list(vals("serviceName", "pers"))); len(got) != 1 {
		t.Fatalf("persistent on a = %v", got)
	}
	// Loop guard: a forwarded request reaching a node that is not
	// responsible either is refused, not sent on.
	req, _ := http.NewRequest("POST", a.srv.URL+"/nacos/v1/ns/instance?"+reg.Encode(), nil)
	req.Header.Set("User-Agent", forwardedUA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("second hop answered %d, want 400", resp.StatusCode)
	}
	// The responsible member unreachable: 503, nothing registered here.
	owners.set("10.0.0.3", "127.0.0.1:1")
	if code, _ := a.call("POST", "/nacos/v1/ns/instance", vals("serviceName", "svc", "ip", "10.0.0.3", "port", "80")); code != http.StatusServiceUnavailable {
		t.Fatalf("unreachable member: %d", code)
	}
}
