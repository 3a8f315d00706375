package raftstore

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// TestThreeNodes shows the store is ready for peers: a bootstrapped node
// adds two voters over the TCP transport, every acknowledged write reaches
// every FSM and applier, and followers refuse writes with ErrNotLeader.
func TestThreeNodes(t *testing.T) {
	var stores []*Store
	var appliers []*fakeApplier
	for i := 0; i < 3; i++ {
		cfg := testConfig(t.TempDir())
		// Three nodes exchange heartbeats: the single-node tests' 50 ms
		// timeouts lose leadership on a loaded 2-core machine under -race
		// (a 55 ms stall was seen), so these use Raft's LAN-like figures.
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		cfg.ServerID = fmt.Sprintf("n%d", i)
		cfg.BindAddr = "127.0.0.1:0"
		cfg.Bootstrap = i == 0
		a := newFakeApplier()
		s, err := Open(cfg, testLogger(t), a, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop() })
		stores = append(stores, s)
		appliers = append(appliers, a)
	}
	leader := stores[0]
	mustNil(t, leader.WaitReady(10*time.Second))
	mustNil(t, leader.PutInstance(svcA, pinst("10.0.0.1", 80))) // before the peers join
	for _, s := range stores[1:] {
		mustNil(t, leader.AddVoter(s.cfg.ServerID, s.Addr()))
	}
	mustNil(t, leader.PutOverride(svcA, naming.Override{Addr: naming.Addr{IP: "10.0.0.1", Port: 80}, Enabled: ptr(false)}))
	mustNil(t, leader.PutServiceMeta(svcB, naming.ServiceMeta{ProtectThreshold: 0.4, Ephemeral: true}))

	want := leader.AllInstances()
	for i, s := range stores[1:] {
		eventually(t, 10*time.Second, fmt.Sprintf("follower %d converges", i+1), func() bool {
			_, ok := s.ServiceMeta(svcB)
			return ok && reflect.DeepEqual(s.AllInstances(), want) && len(s.Overrides(svcA)) == 1
		})
		if id, _ := s.Leader(); id != "n0" {
			t.Fatalf("follower %d sees leader %q", i+1, id)
		}
		if err := s.PutInstance(svcA, pinst("10.0.0.2", 80)); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("write on follower %d: %v", i+1, err)
		}
		if s.Ready() {
			t.Fatalf("follower %d ready", i+1)
		}
	}
	li, lo, lm := appliers[0].snapshot()
	for i, a := range appliers[1:] {
		fi, fo, fm := a.snapshot()
		if !reflect.DeepEqual(li, fi) || !reflect.DeepEqual(lo, fo) || !reflect.DeepEqual(lm, fm) {
			t.Fatalf("applier %d differs from the leader's", i+1)
		}
	}
}
