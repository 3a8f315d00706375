package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/store"
)

// harness is a console on a real SQLite store, listening on 127.0.0.1,
// with one user and API token per role.
type harness struct {
	t      testing.TB
	st     *store.Store
	srv    *Server
	base   string
	tokens map[store.Role]string
	client *http.Client
}

func newHarness(t testing.TB, w Worker) *harness {
	t.Helper()
	return newHarnessDSN(t, w, "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"))
}

// newHarnessDSN is newHarness on the store at dsn.
func newHarnessDSN(t testing.TB, w Worker, dsn string) *harness {
	t.Helper()
	ctx := context.Background()
	log := testlog.New(t, slog.LevelInfo)
	sec, err := store.NewSecrets(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dsn, log, store.WithSecrets(sec), store.WithPasswordCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = log
	cfg.Service.LiveWithin = time.Hour // registered test workers stay live without heartbeats
	cfg.Service.CountsFresh = time.Hour
	cfg.Service.ProbeTimeout = 3 * time.Second
	srv, err := New(st, w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Stop(sctx)
	})
	h := &harness{t: t, st: st, srv: srv, base: srv.URL(), tokens: map[store.Role]string{}, client: &http.Client{Timeout: 30 * time.Second}}
	for _, r := range []store.Role{store.RoleViewer, store.RoleOperator, store.RoleAdmin} {
		if _, err := st.CreateUser(ctx, string(r)+"-user", r, "password-"+string(r), "test"); err != nil {
			t.Fatal(err)
		}
		tok, err := st.CreateToken(ctx, string(r)+"-user", "test")
		if err != nil {
			t.Fatal(err)
		}
		h.tokens[r] = tok
	}
	return h
}

// response is one API answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// field returns a top-level string field of the JSON answer.
func (r response) field(name string) string {
	s, _ := r.JSON[name].(string)
	return s
}

// req sends body (JSON-encoded unless it is a string or nil) with the
// token (none when "") and headers (pairs).
func (h *harness) req(method, path, token string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	rq, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		rq.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		rq.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		rq.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.client.Do(rq)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := response{Status: resp.StatusCode, Header: resp.Header}
	out.Body, _ = io.ReadAll(resp.Body)
	if len(out.Body) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(out.Body, &out.JSON); err != nil {
			// arrays and other shapes: leave JSON nil
			out.JSON = nil
		}
	}
	return out
}

// as sends with the token of role.
func (h *harness) as(r store.Role, method, path string, body any) response {
	h.t.Helper()
	return h.req(method, path, h.tokens[r], body)
}

// want fails unless the answer has status (and, for an error, code).
func (h *harness) want(resp response, status int, code string) response {
	h.t.Helper()
	if resp.Status != status || (code != "" && resp.field("code") != code) {
		h.t.Fatalf("status %d %s; want %d %s", resp.Status, resp.Body, status, code)
	}
	return resp
}

// seed creates a ZooKeeper cluster, a registry cluster and a task, and
// registers worker ids as live; it returns the task id.
func (h *harness) seed(workers ...string) int64 {
	h.t.Helper()
	ctx := context.Background()
	zk := &store.ZKCluster{Name: "zk-main", ConnectString: "127.0.0.1:2181"}
	if err := h.st.CreateZKCluster(ctx, zk); err != nil {
		h.t.Fatal(err)
	}
	reg := &store.RegistryCluster{Name: "reg-main", Kind: store.RegistryBundled, ServerList: []string{"127.0.0.1:8848"}}
	if err := h.st.CreateRegistryCluster(ctx, reg); err != nil {
		h.t.Fatal(err)
	}
	task := &store.SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: store.ScopeFull, CreatedBy: "test"}
	if err := h.st.CreateTask(ctx, task); err != nil {
		h.t.Fatal(err)
	}
	for _, w := range workers {
		if err := h.st.RegisterWorker(ctx, w, "127.0.0.1:1", "test"); err != nil {
			h.t.Fatal(err)
		}
	}
	return task.ID
}

// putCounts writes worker's counts of task: services as
// (service, app, zk, registry, synced, native).
type svcCount struct {
	service, app                 string
	zk, registry, synced, native int
}

func (h *harness) putCounts(worker string, task int64, svcs ...svcCount) {
	h.t.Helper()
	apps := map[string]*store.AppCount{}
	var scs []store.ServiceCount
	for _, s := range svcs {
		a := apps[s.app]
		if a == nil {
			a = &store.AppCount{TaskID: task, App: s.app, Kind: store.KindInterface}
			apps[s.app] = a
		}
		a.ZK += s.zk
		a.Synced += s.synced
		a.Native += s.native
		scs = append(scs, store.ServiceCount{TaskID: task, Service: s.service, App: s.app, Kind: store.KindInterface,
			ZK: s.zk, Registry: s.registry, Synced: s.synced, Native: s.native})
	}
	var acs []store.AppCount
	for _, a := range apps {
		acs = append(acs, *a)
	}
	if err := h.st.PutCounts(context.Background(), worker, task, acs, scs); err != nil {
		h.t.Fatal(err)
	}
}
