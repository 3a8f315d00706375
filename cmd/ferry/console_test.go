package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/web"
)

// lockedBuffer is an output written by a running command and read by the
// test.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ferryIO runs `ferry args...` in-process with stdin and returns its exit
// code, stdout and stderr.
func ferryIO(stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := runIO(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// The scriptable contract of `ferry user` and `ferry ctl` against a
// console on the same store.
func TestUserAndCtlCommands(t *testing.T) {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "ferry.db")
	if code, out, errOut := ferryIO("password-alice\n", "user", "add", "-db", dsn, "-name", "alice", "-role", "operator"); code != 0 {
		t.Fatalf("user add: %d %s %s", code, out, errOut)
	}
	for _, bad := range [][]string{
		{"user", "add", "-db", dsn, "-name", "bob", "-role", "root"},
		{"user", "add", "-db", dsn, "-name", "alice", "-role", "viewer"}, // taken
		{"user", "token", "-db", dsn, "-name", "nobody"},
		{"user", "add", "-db", dsn, "-role", "viewer"},
	} {
		if code, _, errOut := ferryIO("password-bob\n", bad...); code != 1 || errOut == "" {
			t.Errorf("%q: code %d, stderr %q; want 1 with a reason", bad, code, errOut)
		}
	}
	if code, _, errOut := ferryIO("short\n", "user", "add", "-db", dsn, "-name", "carol", "-role", "viewer"); code != 1 || !strings.Contains(errOut, "password") {
		t.Errorf("short password: %d %q", code, errOut)
	}
	code, out, errOut := ferryIO("", "user", "token", "-db", dsn, "-name", "alice")
	if code != 0 || !regexp.MustCompile(`^`+store.TokenPrefix+`[A-Za-z0-9_-]{20,}\n$`).MatchString(out) {
		t.Fatalf("user token: %d %q %q; want the token alone on one line", code, out, errOut)
	}
	token := strings.TrimSpace(out)
	if code, out, _ := ferryIO("", "user", "list", "-db", dsn); code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "operator") {
		t.Fatalf("user list: %d %q", code, out)
	}

	// A console on the store, with an app counted by a worker.
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	zkc := &store.ZKCluster{Name: "zk", ConnectString: "127.0.0.1:2181"}
	regc := &store.RegistryCluster{Name: "reg", Kind: store.RegistryBundled, ServerList: []string{"127.0.0.1:8848"}}
	if err := st.CreateZKCluster(ctx, zkc); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRegistryCluster(ctx, regc); err != nil {
		t.Fatal(err)
	}
	task := &store.SyncTask{SourceClusterID: zkc.ID, DestClusterID: regc.ID, Scope: store.ScopeFull}
	if err := st.CreateTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := st.RegisterWorker(ctx, "w1", "", "test"); err != nil {
		t.Fatal(err)
	}
	if err := st.PutCounts(ctx, "w1", task.ID, []store.AppCount{{TaskID: task.ID, App: "billing", Kind: store.KindInterface, ZK: 2, Synced: 2}},
		[]store.ServiceCount{{TaskID: task.ID, Service: "providers:com.b.Billing::", App: "billing", Kind: store.KindInterface, ZK: 2, Registry: 2, Synced: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendEvents(ctx, store.Event{Kind: store.EventRegistered, Service: "providers:com.b.Billing::", Worker: "w1", Detail: "task=task-1 x"}); err != nil {
		t.Fatal(err)
	}
	wcfg := web.DefaultConfig()
	wcfg.Addr = "127.0.0.1:0"
	wcfg.Service.LiveWithin = time.Hour
	con, err := web.New(st, nil, wcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := con.Start(); err != nil {
		t.Fatal(err)
	}
	defer con.Stop(context.Background())
	server := con.URL()

	if code, _, errOut := ferryIO("", "ctl", "-server", server, "apps"); code != 1 || !strings.Contains(errOut, "FERRY_TOKEN") {
		t.Fatalf("ctl without a token: %d %q", code, errOut)
	}
	if code, _, errOut := ferryIO("", "ctl", "-server", server, "-token", token+"x", "apps"); code != 1 || !strings.Contains(errOut, "401") {
		t.Fatalf("ctl with a wrong token: %d %q", code, errOut)
	}
	code, out, errOut = ferryIO("", "ctl", "-server", server, "-token", token, "apps")
	if code != 0 || !regexp.MustCompile(`billing\s+sync\s+2\s+2\s+0\s+0`).MatchString(out) {
		t.Fatalf("ctl apps: %d %q %q", code, out, errOut)
	}
	t.Setenv(tokenEnv, token)
	if code, out, _ := ferryIO("", "ctl", "apps", "-server", server, "-json"); code != 0 || !strings.HasPrefix(out, `{"apps":[{"name":"billing","mode":"sync"`) {
		t.Fatalf("ctl apps -json (token from %s): %d %q", tokenEnv, code, out)
	}
	// Switching leaves the service empty: refused with the preview, then forced.
	code, out, errOut = ferryIO("", "ctl", "-server", server, "app", "set", "billing", "native")
	if code != 1 || !strings.Contains(errOut, "2 synced instance(s) would vanish") || !strings.Contains(errOut, "providers:com.b.Billing::") {
		t.Fatalf("ctl app set without -force: %d %q %q", code, out, errOut)
	}
	code, out, errOut = ferryIO("", "ctl", "-server", server, "app", "set", "billing", "native", "-force")
	if code != 0 || !strings.Contains(out, "app billing: sync -> native (version 1); 2 synced instance(s) leave") {
		t.Fatalf("ctl app set -force: %d %q %q", code, out, errOut)
	}
	if a, err := st.GetApp(ctx, "billing"); err != nil || a.Mode != store.AppNative || a.ChangedBy != "alice" {
		t.Fatalf("app after ctl: %+v %v", a, err)
	}
	if code, _, errOut := ferryIO("", "ctl", "-server", server, "app", "set", "billing", "nacos"); code != 1 || !strings.Contains(errOut, "field mode") {
		t.Fatalf("ctl app set bad mode: %d %q", code, errOut)
	}
	code, out, errOut = ferryIO("", "ctl", "-server", server, "events", "-task", "1")
	if code != 0 || !strings.Contains(out, "registered") || !strings.Contains(out, "providers:com.b.Billing::") {
		t.Fatalf("ctl events: %d %q %q", code, out, errOut)
	}
}

// `ferry sync` serves the console on -http: the first worker on an empty
// store creates admin and prints its password once; /metrics is open,
// /api/status needs a login.
func TestSyncServesConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("real ZooKeeper and registry")
	}
	zk := zkserver.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zk.Addr()}
	lcfg.Services, lcfg.Instances = 2, 1
	lcfg.WithNacosShare, lcfg.VersionShare, lcfg.GroupShare = 0, 0, 0
	loader, err := zkload.Connect(ctx, lcfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer loader.Close()
	if _, err := loader.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	rcfg := registryserver.DefaultConfig()
	rcfg.Port = 0
	rcfg.DataDir = t.TempDir()
	reg, err := registryserver.Open(rcfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()

	dsn := "sqlite://" + filepath.Join(t.TempDir(), "ferry.db")
	out := &lockedBuffer{}
	env := &cmdEnv{stdout: out, stderr: out, logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runSync(sctx, env, []string{"sync", "-zk", zk.Addr(), "-registry", reg.HTTPAddr().String(), "-db", dsn,
			"-http", "127.0.0.1:0", "-worker-id", "w1"}[1:])
	}()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ferry sync: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("ferry sync did not stop")
		}
	}()
	urlRe := regexp.MustCompile(`console: (http://\S+)`)
	pwRe := regexp.MustCompile(`console: created user admin with password (\S+)`)
	poll.Until(t, time.Minute, "ferry sync prints its console URL", func() bool { return urlRe.MatchString(out.String()) })
	base := urlRe.FindStringSubmatch(out.String())[1]
	m := pwRe.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no admin password printed:\n%s", out.String())
	}
	get := func(path string, cookie *http.Cookie) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/metrics", nil); c != 200 {
		t.Fatalf("/metrics = %d", c)
	}
	if c := get("/api/status", nil); c != 401 {
		t.Fatalf("/api/status without a login = %d, want 401", c)
	}
	body, _ := json.Marshal(map[string]string{"name": "admin", "password": m[1]})
	resp, err := http.Post(base+"/api/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == web.SessionCookie {
			session = c
		}
	}
	if resp.StatusCode != 200 || session == nil {
		t.Fatalf("login as admin: %d, cookie %v", resp.StatusCode, session)
	}
	if c := get("/api/status", session); c != 200 {
		t.Fatalf("/api/status logged in = %d", c)
	}
	// The worker recorded the console's real address (port 0 resolved).
	st, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ws, err := st.ListWorkers(ctx, time.Minute)
	if err != nil || len(ws) != 1 || "http://"+ws[0].Address != base {
		t.Fatalf("workers %+v (%v), want address %s", ws, err, base)
	}
	if strings.Count(out.String(), "created user admin") != 1 {
		t.Fatal(fmt.Sprintf("admin created more than once:\n%s", out.String()))
	}
}

// apiCall sends a JSON call to a console with a bearer token and decodes
// the answer into out (when not nil); it returns the status.
func apiCall(t testing.TB, method, url, token string, in, out any) int {
	t.Helper()
	var body *bytes.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	} else {
		body = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// TestConsoleSwitchesAppOnEveryWorker: two `ferry sync` processes on
// MariaDB, two apps in ZooKeeper. Switching app 0 to native through one
// worker's console removes its synced instances from the registry (a
// consumer's healthy view) and keeps app 1's; the other worker's console
// shows the same mode and the audit row; switching back through the other
// console restores them.
func TestConsoleSwitchesAppOnEveryWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("real MariaDB, ZooKeeper, registry and two ferry sync processes")
	}
	const services, instances = 20, 2 // zkload: 10 services per app, so two apps
	r := newHARig(t, services, instances)
	op := func() string {
		ctx := context.Background()
		st, err := store.Open(ctx, r.dsn, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.CreateUser(ctx, "test-operator", store.RoleOperator, "test-operator-password", "test"); err != nil {
			t.Fatal(err)
		}
		tok, err := st.CreateToken(ctx, "test-operator", "test")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	_, addr1, addr2, _ := r.twoWorkers(services * instances)
	app0, app1 := r.loader.Application(0), r.loader.Application(services-1)
	count := func() (a0, a1 int) {
		for k := range r.healthy() {
			switch {
			case strings.Contains(k, ".app0000."):
				a0++
			case strings.Contains(k, ".app0001."):
				a1++
			}
		}
		return a0, a1
	}
	if a0, a1 := count(); a0 != 20 || a1 != 20 {
		t.Fatalf("before: %s %d, %s %d instances", app0, a0, app1, a1)
	}
	// Any replica diffs any service per ip:port (the worker's ServiceDiff).
	svc0 := "providers:" + r.loader.Interface(0) + "::"
	var diff web.ServiceDiff
	poll.Every(t, 30*time.Second, httpPoll, "w2's console diffs "+svc0+" as in step", func() bool {
		diff = web.ServiceDiff{}
		code := apiCall(t, "GET", "http://"+addr2+"/api/v1/services/diff?"+url.Values{"task": {"1"}, "service": {svc0}}.Encode(), r.token, nil, &diff)
		return code == 200 && len(diff.Names) == 1 && diff.Names[0].Service == svc0 && diff.Names[0].Same == instances && !diff.Names[0].Short()
	})

	start := time.Now()
	var res web.AppChangeResult
	if code := apiCall(t, "PUT", "http://"+addr1+"/api/v1/apps/"+app0, op, map[string]any{"mode": "native", "force": true}, &res); code != 200 {
		t.Fatalf("PUT %s native through w1 = %d", app0, code)
	}
	poll.Every(t, 30*time.Second, httpPoll, app0+"'s synced instances gone, "+app1+"'s kept", func() bool {
		a0, a1 := count()
		if a1 != 20 {
			t.Fatalf("%s lost instances: %d", app1, a1)
		}
		return a0 == 0
	})
	t.Logf("mode change to native reached the registry in %v", time.Since(start))

	var a web.AppView
	if code := apiCall(t, "GET", "http://"+addr2+"/api/v1/apps/"+app0, op, nil, &a); code != 200 || a.Mode != "native" || a.ChangedBy != "test-operator" {
		t.Fatalf("w2's console: %d %+v", code, a)
	}
	var audit web.AuditPage
	apiCall(t, "GET", "http://"+addr2+"/api/v1/audit?target=app+"+app0, op, nil, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Actor != "test-operator" || !strings.Contains(audit.Entries[0].After, "native") {
		t.Fatalf("w2's audit: %+v", audit)
	}
	start = time.Now()
	if code := apiCall(t, "PUT", "http://"+addr2+"/api/v1/apps/"+app0, op, map[string]any{"mode": "sync", "version": a.Version}, nil); code != 200 {
		t.Fatalf("PUT %s sync through w2 = %d", app0, code)
	}
	poll.Every(t, 30*time.Second, httpPoll, app0+"'s instances back", func() bool {
		a0, a1 := count()
		return a0 == 20 && a1 == 20
	})
	t.Logf("mode change back to sync reached the registry in %v", time.Since(start))
}
