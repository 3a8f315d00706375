package configsvc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
)

func TestPublishValidation(t *testing.T) {
	st := newMemStore()
	s := newTestService(t, st, func(c *Config) { c.MaxContentBytes = 64 })
	good := Key{Group: "DEFAULT_GROUP", DataID: "app.yaml"}
	cases := []struct {
		name    string
		key     Key
		content string
		want    string
	}{
		{"empty dataId", Key{Group: "G"}, "x", "dataId is required"},
		{"empty group", Key{DataID: "d"}, "x", "group is required"},
		{"space in dataId", Key{Group: "G", DataID: "a b"}, "x", "dataId \"a b\" has characters"},
		{"slash in group", Key{Group: "G/1", DataID: "d"}, "x", "group \"G/1\" has characters"},
		{"bad tenant", Key{Tenant: "t*", Group: "G", DataID: "d"}, "x", "tenant \"t*\" has characters"},
		{"long dataId", Key{Group: "G", DataID: strings.Repeat("d", 256)}, "x", "dataId is longer"},
		{"empty content", good, "", "content is required"},
		{"oversized", good, strings.Repeat("x", 65), "content is 65 bytes (max 64)"},
		{"bad utf8", good, "\xff", "not valid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.Publish(c.key, c.content, "text", "")
			if !errors.Is(err, ErrInvalidParam) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalidParam with %q", err, c.want)
			}
		})
	}
	if st.ConfigCount() != 0 || st.puts != 0 {
		t.Fatalf("stored %d configs after bad input", st.ConfigCount())
	}
	if err := s.Publish(good, strings.Repeat("x", 64), "yaml", ""); err != nil {
		t.Fatalf("content at the limit: %v", err)
	}
	if err := s.Publish(Key{Group: "g-1_a:b.c", DataID: "A-z_0:9."}, "x", "", ""); err != nil {
		t.Fatalf("every allowed character: %v", err)
	}
}

func TestPublishGetRemoveCASHistory(t *testing.T) {
	st := newMemStore()
	s := newTestService(t, st, func(c *Config) { c.HistoryMax = 2 })
	k := Key{Tenant: "public", Group: "G", DataID: "d"}
	if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	// CAS on a missing config creates it (Nacos insertOrUpdateCas).
	if err := s.Publish(k, "v1", "json", "whatever"); err != nil {
		t.Fatal(err)
	}
	it, err := s.Get(Key{Group: "G", DataID: "d"}) // "public" is ""
	if err != nil || it.Content != "v1" || it.MD5 != MD5("v1") || it.Type != "json" || it.LastModified == 0 {
		t.Fatalf("get = %+v, %v", it, err)
	}
	if err := s.Publish(k, "v2", "json", MD5("stale")); !errors.Is(err, ErrCASMismatch) {
		t.Fatalf("stale cas: %v", err)
	}
	if err := s.Publish(k, "v2", "unknown-type", MD5("v1")); err != nil {
		t.Fatalf("cas with current md5: %v", err)
	}
	for _, v := range []string{"v3", "v4"} {
		if err := s.Publish(k, v, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	it, _ = s.Get(k)
	if it.Content != "v4" || it.Type != "text" || len(it.History) != 2 || it.History[0].Content != "v3" || it.History[1].Content != "v2" {
		t.Fatalf("after v4: %+v", it)
	}
	if err := s.Remove(k); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(k); err != nil {
		t.Fatalf("remove missing: %v", err)
	}
	if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get removed: %v", err)
	}
	st.err = errors.New("not leader")
	if err := s.Publish(k, "v5", "", ""); err == nil || errors.Is(err, ErrInvalidParam) {
		t.Fatalf("store failure: %v", err)
	}
}

// recPusher records pushes; fail makes the first n pushes per key time out.
type recPusher struct {
	mu    sync.Mutex
	got   []string
	fails int
	gone  map[string]bool
	ch    chan string
}

func (p *recPusher) PushChange(ctx context.Context, k Key, connIDs []string) []PushOutcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PushOutcome, len(connIDs))
	for i, connID := range connIDs {
		out[i].At = time.Now()
		if p.gone[connID] {
			out[i].Err = ErrGone
			continue
		}
		if p.fails > 0 {
			p.fails--
			out[i].Err = context.DeadlineExceeded
			continue
		}
		p.got = append(p.got, connID+"|"+k.String())
		if p.ch != nil {
			p.ch <- connID + "|" + k.String()
		}
	}
	return out
}

func TestListenPushDrop(t *testing.T) {
	st := newMemStore()
	s := newTestService(t, st, func(c *Config) { c.PushRetryDelay = time.Millisecond })
	p := &recPusher{ch: make(chan string, 10), fails: 1}
	s.pusher = p
	a := Key{Group: "G", DataID: "a"}
	b := Key{Group: "G", DataID: "b"}
	if err := s.Publish(a, "x", "", ""); err != nil {
		t.Fatal(err)
	}
	changed := s.Listen("c1", []ListenContext{{Key: a, MD5: ""}, {Key: b, MD5: ""}})
	pubA := Key{Tenant: "public", Group: "G", DataID: "a"} // the public tenant spelt out
	if changed := s.Listen("c3", []ListenContext{{Key: pubA, MD5: MD5("x")}}); len(changed) != 0 {
		t.Fatalf("public tenant listener: changed = %v", changed)
	}
	if !slices.Equal(changed, []Key{a}) {
		t.Fatalf("changed = %v, want [a]", changed)
	}
	if changed := s.Listen("c2", []ListenContext{{Key: a, MD5: MD5("x")}}); len(changed) != 0 {
		t.Fatalf("up to date listener: changed = %v", changed)
	}
	if err := s.Publish(a, "y", "", ""); err != nil {
		t.Fatal(err)
	}
	got := []string{recv(t, p.ch), recv(t, p.ch), recv(t, p.ch)} // one of them after a retry
	slices.Sort(got)
	if !slices.Equal(got, []string{"c1|/G/a", "c2|/G/a", "c3|public/G/a"}) {
		t.Fatalf("pushes = %v", got)
	}
	s.Unlisten("c2", []Key{a})
	s.Unlisten("c3", []Key{pubA})
	s.DropConn("c1")
	if l := s.Listeners(a); len(l) != 0 {
		t.Fatalf("listeners after drop = %v", l)
	}
	if err := s.Publish(a, "z", "", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case x := <-p.ch:
		t.Fatalf("push to a dropped listener: %s", x)
	default:
	}
}

func recv(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case x := <-ch:
		return x
	case <-time.After(30 * time.Second):
		t.Fatal("no push")
		return ""
	}
}

func TestLongPoll(t *testing.T) {
	st := newMemStore()
	s := newTestService(t, st, nil)
	k := Key{Group: "G", DataID: "lp"}
	want := []ListenContext{{Key: k}}
	// Nothing differs: times out empty.
	start := time.Now()
	if got := s.LongPoll(context.Background(), slices.Clone(want), 50*time.Millisecond); got != nil {
		t.Fatalf("timeout answer = %v", got)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("returned before its timeout")
	}
	// A change while waiting answers it.
	done := make(chan []Key)
	go func() { done <- s.LongPoll(context.Background(), slices.Clone(want), time.Minute) }()
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.nPoll == 1 })
	if err := s.Publish(k, "v", "", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if !slices.Equal(got, []Key{k}) {
			t.Fatalf("answer = %v", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("long poll not woken")
	}
	// Already differing: at once.
	if got := s.LongPoll(context.Background(), slices.Clone(want), time.Minute); !slices.Equal(got, []Key{k}) {
		t.Fatalf("immediate answer = %v", got)
	}
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.nPoll == 0 && len(s.waiters) == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	poll.Until(t, 30*time.Second, "the condition", cond)
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.MaxContentBytes = 0
	if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "MaxContentBytes") {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfig(), nil, nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
}
