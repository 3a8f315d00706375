package worker

import (
	"context"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/ferrysync/ferry/zkwatch"
)

// TestWorkerSessionExpiry: the worker's ZooKeeper connection is cut (a TCP
// proxy) for longer than its 2 s session timeout, so ZooKeeper expires the
// session while providers change behind the worker's back. Throughout,
// no synced instance ever leaves the registry (sampled every 100 ms); once
// the connection heals, the worker sees the expiry, re-lists everything and
// applies what changed: the provider added during the cut appears, the one
// removed during the cut goes, nothing else moves.
func TestWorkerSessionExpiry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lcfg, st := newStack(ctx, t, 3, 2, 0)
	proxy, err := zkserver.NewProxy(st.zk.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	wcfg := st.workerConfig(t, "")
	wcfg.ZK = []string{proxy.Addr()}
	wcfg.ZKSessionTimeout = 2 * time.Second
	w, err := Start(ctx, wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())

	svc := func(i int) string { return "providers:" + st.loader.Interface(i) + "::" }
	addrs := func(i int) map[string]bool {
		out := map[string]bool{}
		for _, h := range hosts(t, st.regAddr, svc(i)) {
			out[h["ip"].(string)] = true
		}
		return out
	}
	waitFor(t, "every provider registered", 60*time.Second, func() bool {
		for i := 0; i < lcfg.Services; i++ {
			if len(addrs(i)) != lcfg.Instances {
				return false
			}
		}
		return true
	})
	before := make([]map[string]bool, lcfg.Services)
	for i := range before {
		before[i] = addrs(i)
	}
	// gone: the one provider allowed to leave (removed during the cut).
	var gone string
	check := func(when string) {
		t.Helper()
		for i := range before {
			now := addrs(i)
			for ip := range before[i] {
				if !now[ip] && !(i == 1 && ip == gone) {
					t.Fatalf("%s: %s of %s missing from the registry", when, ip, svc(i))
				}
			}
		}
	}

	proxy.Cut()
	// Change ZooKeeper behind the worker's back: one provider more in
	// service 0, one fewer in service 1.
	added := st.loader.ProviderURL(0, lcfg.Instances, time.Now().UnixMilli())
	if _, err := st.loader.Conn().Create(st.loader.ProviderPath(0, added), nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	kids, _, err := st.loader.Conn().Children(st.loader.ServicePath(1) + "/providers")
	if err != nil || len(kids) == 0 {
		t.Fatalf("providers of service 1: %v, %v", kids, err)
	}
	if err := st.loader.Conn().Delete(st.loader.ServicePath(1)+"/providers/"+kids[0], -1); err != nil {
		t.Fatal(err)
	}
	u, err := zkwatch.ParseProviderNode(kids[0])
	if err != nil || !before[1][u.Host] {
		t.Fatalf("removed provider %q: %+v, %v", kids[0], u, err)
	}
	gone = u.Host
	// The worker learns of the cut from its client's events, in its own
	// goroutines: wait for that before asserting it holds.
	waitFor(t, "the worker sees the cut", 30*time.Second, func() bool { return !w.Status().ZKSynced })
	// Well past the session timeout: ZooKeeper expires the session.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		check("connection cut")
		if w.Status().ZKSynced {
			t.Fatal("worker reports ZooKeeper synced while cut off")
		}
		time.Sleep(100 * time.Millisecond) // sampling interval, not synchronisation
	}
	proxy.Heal()
	expiries := func() float64 {
		mfs, err := w.gather.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0.0
		for _, mf := range mfs {
			if mf.GetName() == "zkwatch_session_expiries_total" {
				for _, m := range mf.GetMetric() {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		check("after the heal")
		a0, a1 := addrs(0), addrs(1)
		if expiries() >= 1 && w.Status().ZKSynced && len(a0) == lcfg.Instances+1 && len(a1) == lcfg.Instances-1 && !a1[gone] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the heal: expiries %v, synced %v, service 0 %v, service 1 %v", expiries(), w.Status().ZKSynced, a0, a1)
		}
		time.Sleep(100 * time.Millisecond) // sampling interval, not synchronisation
	}
	check("synced again")
}
