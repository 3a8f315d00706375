package store

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/internal/zkserver"
)

// outageConfig is fastConfig with a TTL long enough for a paused MariaDB
// to be noticed by every lessor between two renewals on a loaded machine.
func outageConfig(id string) LessorConfig {
	c := fastConfig(id)
	c.TTL = time.Second
	c.SafetyMargin = 100 * time.Millisecond
	return c
}

// keptUnion returns every kept shard and fails when two lessors keep one.
func keptUnion(t *testing.T, ls []*Lessor) map[int]uint64 {
	t.Helper()
	out := map[int]uint64{}
	for _, l := range ls {
		for sh, ep := range l.Kept() {
			if _, dup := out[sh]; dup {
				t.Fatalf("shard %d kept by two lessors", sh)
			}
			out[sh] = ep
		}
	}
	return out
}

func ownedUnion(ls []*Lessor) map[int]uint64 {
	out := map[int]uint64{}
	for _, l := range ls {
		maps.Copy(out, l.Owned())
	}
	return out
}

// TestLeaseStoreHangKeepsShards: MariaDB freezes (SIGSTOP, connections left
// open) for many TTLs. Every lessor stops owning (no registrations or
// deregistrations are allowed) but keeps its last owned shards (beat-only),
// and reports the outage. When the database continues, every kept lease is
// renewed with its epoch: nothing moved, and no two owners ever overlapped.
func TestLeaseStoreHangKeepsShards(t *testing.T) {
	srv := mysqlserver.ForTest(t)
	s := openDSN(t, srv.DSN())
	lg := newLedger()
	ls := startLessors(t, s, lg, 3, outageConfig)
	waitBalanced(t, ls, 10*time.Second)
	before := ownedUnion(ls)

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			_ = srv.Resume()
		}
	}()
	waitFor(t, 60*time.Second, "every lease kept, none owned", func() bool {
		return len(ownedUnion(ls)) == 0 && len(keptUnion(t, ls)) == DefaultShards
	})
	if got := keptUnion(t, ls); !maps.Equal(got, before) {
		t.Fatalf("kept set differs from the owned set before the outage")
	}
	for _, l := range ls {
		if l.StoreDownSince().IsZero() {
			t.Errorf("%s: StoreDownSince zero during the outage", l.cfg.WorkerID)
		}
		if v := readGauge(l.metrics.reachable); v != 0 {
			t.Errorf("%s: ferry_lease_store_reachable = %v during the outage", l.cfg.WorkerID, v)
		}
	}
	// Stay down for several TTLs: the kept set must not change.
	deadline := time.Now().Add(5 * outageConfig("x").TTL)
	for time.Now().Before(deadline) {
		if got := keptUnion(t, ls); !maps.Equal(got, before) || len(ownedUnion(ls)) != 0 {
			t.Fatalf("kept/owned changed during the outage: kept %d owned %d", len(got), len(ownedUnion(ls)))
		}
		time.Sleep(20 * time.Millisecond) // sampling interval, not synchronisation
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	paused = false
	took := waitFor(t, 60*time.Second, "every kept lease owned again with its epoch", func() bool {
		return len(keptUnion(t, ls)) == 0 && maps.Equal(ownedUnion(ls), before)
	})
	t.Logf("leases confirmed %v after the database continued", took)
	// Reachable again, eventually: on a loaded machine a statement of the
	// same tick after the confirming renewal, or a heartbeat, may time out
	// and mark the store down once more (w2 did, right after the leases
	// were confirmed), so this is waited for, not read once.
	for _, l := range ls {
		waitFor(t, 60*time.Second, l.cfg.WorkerID+" reports the store reachable", func() bool { return l.StoreDownSince().IsZero() })
	}
	lg.check(t)
}

// TestLeasePartitionedWorkerDropsMovedShards: one lessor loses its store
// connection (a cuttable proxy) while the others keep theirs. It keeps its
// shards beat-only while cut off; the others take them after its expiry;
// once it reaches the store again it learns they moved and stops keeping
// them at once. Owns never holds for two workers.
func TestLeasePartitionedWorkerDropsMovedShards(t *testing.T) {
	srv := sharedMySQL(t)
	dsn, err := srv.CreateDatabase(context.Background(), fmt.Sprintf("t%d", shared.n.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	s := openDSN(t, dsn)
	px, err := zkserver.NewProxy(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	cutStore := openDSN(t, strings.Replace(dsn, srv.Addr(), px.Addr(), 1))

	lg := newLedger()
	others := startLessors(t, s, lg, 2, outageConfig)
	cutOff := startLessors(t, cutStore, lg, 1, func(string) LessorConfig { return outageConfig("cut") })[0]
	all := append([]*Lessor{cutOff}, others...)
	waitBalanced(t, all, 10*time.Second)
	mine := cutOff.Owned()

	px.Cut()
	waitFor(t, 60*time.Second, "the cut-off lessor keeps its shards, the others own them all", func() bool {
		return maps.Equal(cutOff.Kept(), mine) && len(cutOff.Owned()) == 0 && len(ownedUnion(others)) == DefaultShards
	})
	if cutOff.StoreDownSince().IsZero() {
		t.Error("cut-off lessor does not report the outage")
	}
	px.Heal()
	took := waitFor(t, 60*time.Second, "moved shards no longer kept; three lessors balanced", func() bool {
		return len(cutOff.Kept()) == 0 && len(cutOff.Owned()) > 0
	})
	t.Logf("kept shards dropped %v after the store became reachable again", took)
	waitBalanced(t, all, 15*time.Second)
	lg.check(t)
}

// TestLeaseOutageKeepCap: with OutageKeep set, kept shards are given up
// once the outage lasts longer.
func TestLeaseOutageKeepCap(t *testing.T) {
	srv := mysqlserver.ForTest(t)
	dsn, err := srv.CreateDatabase(context.Background(), "cap")
	if err != nil {
		t.Fatal(err)
	}
	s := openDSN(t, dsn)
	lg := newLedger()
	ls := startLessors(t, s, lg, 1, func(id string) LessorConfig {
		c := outageConfig(id)
		c.OutageKeep = 2 * time.Second
		return c
	})
	waitBalanced(t, ls, 10*time.Second)
	srv.Kill() // answers errors (connection refused) rather than hanging
	waitFor(t, 60*time.Second, "shards kept", func() bool { return len(ls[0].Kept()) == DefaultShards })
	took := waitFor(t, 60*time.Second, "kept shards given up after the cap", func() bool { return len(ls[0].Kept()) == 0 })
	t.Logf("kept shards dropped %v after they were kept (cap 2s)", took)
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitBalanced(t, ls, 15*time.Second)
	lg.check(t)
}

// TestLeaseDraining: a draining lessor hands every shard to the other live
// worker at once (not after its TTL) and takes its share again when
// draining ends; a lone draining lessor keeps its shards.
func TestLeaseDraining(t *testing.T) {
	s := openMySQL(t)
	lg := newLedger()
	ls := startLessors(t, s, lg, 2, func(id string) LessorConfig {
		c := fastConfig(id)
		// So that waiting for expiry would show: the budget below is well
		// short of it and still generous on a loaded machine.
		c.TTL = 60 * time.Second
		return c
	})
	waitBalanced(t, ls, 10*time.Second)
	ls[0].SetDraining(true)
	took := waitFor(t, 30*time.Second, "the other owns every shard", func() bool {
		return len(ls[0].Owned()) == 0 && len(ls[1].Owned()) == DefaultShards
	})
	t.Logf("drained in %v (TTL 60s)", took)
	ls[0].SetDraining(false)
	waitBalanced(t, ls, 10*time.Second)
	lg.check(t)

	solo := startLessors(t, openMySQL(t), newLedger(), 1, fastConfig)[0]
	solo.SetDraining(true)
	waitFor(t, 60*time.Second, "the lone lessor owns every shard", func() bool { return len(solo.Owned()) == DefaultShards })
}

// TestLeaseStoreAnswersErrorsKeepsShards: the store answers every lease
// statement with an error (here: the lease table is gone, as after a
// restore of another schema version) instead of hanging. Same keep-alive:
// the shards are kept, nothing is owned, the error is reported; when the
// table is back the leases are owned again with their epochs.
func TestLeaseStoreAnswersErrorsKeepsShards(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		lg := newLedger()
		ls := startLessors(t, s, lg, 1, outageConfig)
		waitBalanced(t, ls, 10*time.Second)
		before := ls[0].Owned()
		rename := func(from, to string) {
			t.Helper()
			q := "ALTER TABLE " + from + " RENAME TO " + to
			if s.Dialect() != "sqlite" {
				q = "RENAME TABLE " + from + " TO " + to
			}
			if err := s.q(ctx).Exec(q).Error; err != nil {
				t.Fatal(err)
			}
		}
		rename("shard_leases", "shard_leases_away")
		waitFor(t, 60*time.Second, "every shard kept, none owned", func() bool {
			return len(ls[0].Owned()) == 0 && maps.Equal(ls[0].Kept(), before)
		})
		if ls[0].StoreDownSince().IsZero() {
			t.Error("store errors not reported as an outage")
		}
		rename("shard_leases_away", "shard_leases")
		waitFor(t, 60*time.Second, "leases owned again with their epochs", func() bool {
			return len(ls[0].Kept()) == 0 && maps.Equal(ls[0].Owned(), before)
		})
		lg.check(t)
	})
}
