package worker

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"

	"github.com/ferrysync/ferry/store"
)

// TestCommandFollowerAppliesOnce: a command whose ack cannot be written
// (a trigger on the real store refuses it) is applied once and acked
// again at each poll until the ack lands; the commands after it wait, in
// order; an acked command is never applied again.
func TestCommandFollowerAppliesOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ferry.db")
	st, err := store.Open(ctx, "sqlite://"+path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A second handle on the file injects the fault (the store offers no
	// raw SQL).
	raw, err := gorm.Open(sqlite.Open(path+"?_pragma=busy_timeout(10000)"), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if db, err := raw.DB(); err == nil {
		defer db.Close()
	}
	var issued []int64
	for i := 0; i < 2; i++ {
		c := &store.Command{Kind: store.CommandConfirmRemovals, CreatedBy: "test"}
		if err := st.IssueCommand(ctx, c, 0); err != nil {
			t.Fatal(err)
		}
		issued = append(issued, c.ID)
	}
	applied := map[int64]int{}
	var errs []error
	f := &commandFollower{st: st, worker: "w1", logErr: func(err error) { errs = append(errs, err) },
		apply: func(c store.Command) (string, string) { applied[c.ID]++; return "done", "" }}
	exec := func(sql string) {
		t.Helper()
		if err := raw.Exec(sql).Error; err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TRIGGER refuse_ack BEFORE INSERT ON command_acks BEGIN SELECT RAISE(ABORT, 'injected'); END`)
	f.poll(ctx)
	f.poll(ctx)
	if applied[issued[0]] != 1 || applied[issued[1]] != 0 || len(errs) != 2 || !strings.Contains(errs[0].Error(), "injected") {
		t.Fatalf("with acks refused: applied %v, errors %v; want the first applied once, the second waiting, two errors", applied, errs)
	}
	exec(`DROP TRIGGER refuse_ack`)
	f.poll(ctx)
	f.poll(ctx)
	if applied[issued[0]] != 1 || applied[issued[1]] != 1 || f.after != issued[1] || len(f.unacked) != 0 {
		t.Fatalf("after the acks land: applied %v, after %d, unacked %v", applied, f.after, f.unacked)
	}
	for _, id := range issued {
		acks, err := st.CommandAcks(ctx, id)
		if err != nil || len(acks) != 1 || acks[0].Result != "done" {
			t.Fatalf("acks of %d = %+v, %v", id, acks, err)
		}
	}
}

func TestParseNode(t *testing.T) {
	for node, want := range map[string]nodeInfo{
		"/dubbo/a.B/providers/dubbo%3A%2F%2F10.0.0.1%3A20880%2Fa.B%3Fapplication%3Dshop%26withNacos%3Dtrue":  {app: "shop", withNacos: true},
		"/dubbo/a.B/providers/dubbo%3A%2F%2F10.0.0.1%3A20880%2Fa.B%3Fapplication%3Dshop%26withNacos%3Dfalse": {app: "shop"},
		"/dubbo/a.B/providers/dubbo%3A%2F%2F10.0.0.1%3A20880%2Fa.B":                                          {},
		"/dubbo/a.B/providers/%zz": {},
		"":                         {},
	} {
		if got := parseNode(node); got != want {
			t.Errorf("parseNode(%q) = %+v, want %+v", node, got, want)
		}
	}
}

// TestCountsNodeCacheSweep: a node no round saw for a sweep period leaves
// the cache; one seen stays.
func TestCountsNodeCacheSweep(t *testing.T) {
	c := &countsWriter{nodes: map[string]*nodeEntry{}}
	old := "/dubbo/a.B/providers/dubbo%3A%2F%2F10.0.0.1%3A20880%2Fa.B%3Fapplication%3Dold"
	live := "/dubbo/a.B/providers/dubbo%3A%2F%2F10.0.0.2%3A20880%2Fa.B%3Fapplication%3Dlive"
	c.rounds = 1
	c.node(old)
	for c.rounds = 2; c.rounds <= 1+sweepEvery; c.rounds++ {
		if got := c.node(live); got.app != "live" {
			t.Fatalf("node(live) = %+v", got)
		}
	}
	c.sweep(c.rounds - sweepEvery)
	if _, ok := c.nodes[old]; ok || len(c.nodes) != 1 {
		t.Fatalf("after the sweep the cache holds %v, want only the live node", c.nodes)
	}
}
