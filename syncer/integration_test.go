package syncer

// Integration tests with the real parts that exist on main: a private
// ZooKeeper (internal/zkserver), the real catalog watcher (zkwatch) through
// ZKSource, and the registry's real naming core (registry-server/naming)
// holding beat-kept instances. The registry client (registryclient) and the
// store's leases, app modes and events are not built yet: nsTarget below
// stands in for the client (register, merged BeatMany, deregister) in
// process, and ownership, modes and events are the in-package fakes.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/zkwatch"
	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// nsTarget is Registry on an in-process naming.Registry: Keep registers
// beat-kept instances and beat() sends one merged BeatMany for everything
// kept, as registryclient will over gRPC.
type nsTarget struct {
	r    *naming.Registry
	mu   sync.Mutex
	kept map[ServiceRef][]Instance
}

func nsKey(s ServiceRef) naming.ServiceKey {
	return naming.ServiceKey{Namespace: s.Namespace, Group: s.Group, Name: s.Name}
}

func toNaming(in Instance) naming.Instance {
	return naming.Instance{IP: in.IP, Port: in.Port, Weight: in.Weight, Healthy: in.Healthy, Enabled: in.Enabled,
		Ephemeral: in.Ephemeral, Metadata: in.Metadata}
}

func (n *nsTarget) Keep(_ context.Context, svc ServiceRef, insts []Instance) error {
	for _, in := range insts {
		if err := n.r.RegisterBeatKept(nsKey(svc), toNaming(in)); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.kept[svc] = insts
	n.mu.Unlock()
	return nil
}

func (n *nsTarget) Deregister(_ context.Context, svc ServiceRef, insts []Instance) error {
	for _, in := range insts {
		if err := n.r.DeregisterBeatKept(nsKey(svc), naming.Addr{IP: in.IP, Port: in.Port}); err != nil {
			return err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var keep []Instance
	for _, k := range n.kept[svc] {
		gone := false
		for _, in := range insts {
			gone = gone || in.Addr() == k.Addr()
		}
		if !gone {
			keep = append(keep, k)
		}
	}
	n.kept[svc] = keep
	return nil
}

func (n *nsTarget) LightOnly(ServiceRef, bool) {}

func (n *nsTarget) Release(svc ServiceRef) {
	n.mu.Lock()
	delete(n.kept, svc)
	n.mu.Unlock()
}

func (n *nsTarget) List(_ context.Context, svc ServiceRef) ([]Instance, error) {
	var out []Instance
	for _, in := range n.r.Instances(nsKey(svc)) {
		out = append(out, Instance{IP: in.IP, Port: in.Port, Weight: in.Weight, Healthy: in.Healthy,
			Enabled: in.Enabled, Ephemeral: in.Ephemeral, Metadata: in.Metadata})
	}
	return out, nil
}

func (n *nsTarget) beat() {
	n.mu.Lock()
	var items []naming.BeatRequest
	for svc, insts := range n.kept {
		for _, in := range insts {
			items = append(items, naming.BeatRequest{Key: nsKey(svc), Instance: toNaming(in)})
		}
	}
	n.mu.Unlock()
	n.r.BeatMany(items, true)
}

func (n *nsTarget) get(name, addr string) (naming.Instance, bool) {
	for _, in := range n.r.Instances(naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: name}) {
		if Addr(in.IP, in.Port) == addr {
			return in, true
		}
	}
	return naming.Instance{}, false
}

type zkEnv struct {
	srv    *zkserver.Server
	c      *zk.Conn
	target *nsTarget
	w      *zkwatch.Watcher
	e      *Engine
	events *fakeEvents
	apps   *fakeApps
}

func zkClient(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	c, ev, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithDialer(zkwatch.Dialer(10*time.Second)), zk.WithLogInfo(false), zk.WithLogger(nopZK{}))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ev {
		}
	}()
	t.Cleanup(c.Close)
	eventually(t, "zk session", func() bool { return c.State() == zk.StateHasSession })
	return c
}

type nopZK struct{}

func (nopZK) Printf(string, ...any) {}

func newZKEnv(t *testing.T) *zkEnv { t.Helper(); return newZKEnvWith(t, nil) }

// newZKEnvWith is newZKEnv with the engine's source wrapped (fault
// injection on top of the real watcher); nil leaves it as it is.
func newZKEnvWith(t *testing.T, wrap func(Source) Source) *zkEnv {
	t.Helper()
	srv := zkserver.ForTest(t)
	env := &zkEnv{srv: srv, c: zkClient(t, srv.Addr()), events: &fakeEvents{}, apps: newFakeApps(),
		target: &nsTarget{r: naming.NewRegistry(naming.DefaultConfig(), time.Now), kept: map[ServiceRef][]Instance{}}}
	zcfg := zkwatch.DefaultConfig()
	zcfg.Servers = []string{srv.Addr()}
	zcfg.SessionTimeout = 10 * time.Second
	w, err := zkwatch.New(zcfg, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	env.w = w
	cfg := DefaultConfig()
	cfg.Cluster, cfg.Worker, cfg.Task = "zk1", "w1", "it"
	cfg.ProbeInterval = 0 // sweeps driven by the test
	var src Source = ZKSource{W: w}
	if wrap != nil {
		src = wrap(src)
	}
	e, err := New(cfg, Deps{Source: src, Registry: env.target, Ownership: newFakeOwnership(0, 1),
		ShardOf: shardOf, Apps: env.apps, Events: env.events, Logger: testLogger(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	env.e = e
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
		if err := w.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	return env
}

// javaURL is a Java Dubbo 3.2 provider URL.
func javaURL(iface, host string, port int, ts int64, extra string) string {
	u := fmt.Sprintf("dubbo://%s:%d/%s?application=app-%s&deprecated=false&dubbo=2.0.2&dynamic=true&generic=false&interface=%s&methods=a,b&release=3.2.0&side=provider&timestamp=%d",
		host, port, iface, strings.ReplaceAll(iface, "$", "_"), iface, ts)
	if extra != "" {
		u += "&" + extra
	}
	return u
}

func (env *zkEnv) add(t *testing.T, c *zk.Conn, iface, rawURL string) string {
	t.Helper()
	dir := "/dubbo/" + url.QueryEscape(iface) + "/providers"
	cur := ""
	for _, part := range strings.Split(strings.Trim(dir, "/"), "/") {
		cur += "/" + part
		if _, err := c.Create(cur, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatal(err)
		}
	}
	p := dir + "/" + url.QueryEscape(rawURL)
	if _, err := c.Create(p, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	return p
}

func TestIntegrationZooKeeperToRegistry(t *testing.T) {
	env := newZKEnv(t)
	const name = "providers:org.it.Foo:1.0.0:g1"

	// Added: appears with Dubbo's name and metadata.
	n1 := env.add(t, env.c, "org.it.Foo", javaURL("org.it.Foo", "10.1.0.1", 20880, 1700000000000, "version=1.0.0&group=g1&weight=200"))
	env.add(t, env.c, "org.it.Outer$Inner", javaURL("org.it.Outer$Inner", "10.1.0.2", 20880, 1700000000000, ""))
	env.add(t, env.c, "org.it.Native", javaURL("org.it.Native", "10.1.0.3", 20880, 1700000000000, "withNacos=true"))
	eventually(t, "registered", func() bool {
		_, a := env.target.get(name, "10.1.0.1:20880")
		_, b := env.target.get("providers:org.it.Outer___Inner::", "10.1.0.2:20880")
		return a && b
	})
	in, _ := env.target.get(name, "10.1.0.1:20880")
	for k, v := range map[string]string{"interface": "org.it.Foo", "version": "1.0.0", "group": "g1", "weight": "200",
		"timestamp": "1700000000000", "category": "providers", "protocol": "dubbo", "path": "org.it.Foo",
		"application": "app-org.it.Foo", MetaSource: "zk:zk1", MetaWorker: "w1"} {
		if in.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, in.Metadata[k], v)
		}
	}
	if in.Weight != 1 || !in.Enabled || !in.Healthy || !in.Ephemeral {
		t.Errorf("instance = %+v", in)
	}
	if _, ok := env.target.get("providers:org.it.Native::", "10.1.0.3:20880"); ok {
		t.Error("withNacos provider synced")
	}

	// The kill -9 / restart race: the provider restarts on the same ip:port
	// (a new session, a newer node) before ZooKeeper deletes its old node.
	c2 := zkClient(t, env.srv.Addr())
	n2 := env.add(t, c2, "org.it.Foo", javaURL("org.it.Foo", "10.1.0.1", 20880, 1700000100000, "version=1.0.0&group=g1&weight=200"))
	eventually(t, "restarted provider registered", func() bool {
		in, _ := env.target.get(name, "10.1.0.1:20880")
		return in.Metadata["timestamp"] == "1700000100000"
	})
	if err := env.c.Delete(n1, -1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stale removal dropped", func() bool { return env.events.count(EventStaleRemoval) == 1 })
	if in, ok := env.target.get(name, "10.1.0.1:20880"); !ok || in.Metadata["timestamp"] != "1700000100000" {
		t.Fatalf("after the stale removal: %v %+v", ok, in)
	}
	if got := testutil.ToFloat64(env.e.m.staleDropped); got != 1 {
		t.Fatalf("stale dropped = %v", got)
	}

	// App mode native: removed once; back to sync: restored.
	env.apps.set("app-org.it.Foo", ModeNative)
	eventually(t, "removed on native", func() bool { _, ok := env.target.get(name, "10.1.0.1:20880"); return !ok })
	env.apps.set("app-org.it.Foo", ModeSync)
	eventually(t, "restored", func() bool { _, ok := env.target.get(name, "10.1.0.1:20880"); return ok })

	// Removed in ZooKeeper: gone from the registry.
	if err := c2.Delete(n2, -1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "removed", func() bool { _, ok := env.target.get(name, "10.1.0.1:20880"); return !ok })

	// What the engine keeps is what the merged beat carries: beaten now, it
	// survives an expiry pass 20 s on (past unhealthy, before removal).
	env.target.beat()
	env.target.r.Expire(time.Now().Add(20 * time.Second))
	if _, ok := env.target.get("providers:org.it.Outer___Inner::", "10.1.0.2:20880"); !ok {
		t.Fatal("beat-kept instance expired")
	}
}

// A failed port probe with the provider node still in ZooKeeper is counted
// and leaves the instance alone.
func TestIntegrationProbeNodePresent(t *testing.T) {
	env := newZKEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now: the probe is refused
	env.add(t, env.c, "org.it.Probe", javaURL("org.it.Probe", "127.0.0.1", port, 1700000000000, ""))
	addr := Addr("127.0.0.1", port)
	eventually(t, "registered", func() bool { _, ok := env.target.get("providers:org.it.Probe::", addr); return ok })
	env.e.Sweep(context.Background())
	if got := testutil.ToFloat64(env.e.m.probeFailures.WithLabelValues("present")); got != 1 {
		t.Fatalf("probe failures (present) = %v", got)
	}
	if _, ok := env.target.get("providers:org.it.Probe::", addr); !ok || env.events.count(EventEvicted) != 0 {
		t.Fatal("instance evicted while its node is in ZooKeeper")
	}
}

// ZooKeeper down: nothing is removed; back up: changes flow again.
func TestIntegrationZooKeeperDown(t *testing.T) {
	env := newZKEnv(t)
	p := env.add(t, env.c, "org.it.Down", javaURL("org.it.Down", "10.2.0.1", 20880, 1700000000000, ""))
	env.add(t, env.c, "org.it.Down", javaURL("org.it.Down", "10.2.0.2", 20880, 1700000000000, ""))
	const name = "providers:org.it.Down::"
	eventually(t, "registered", func() bool {
		return len(env.target.r.Instances(naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: name})) == 2
	})
	if err := env.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "watcher sees the disconnect", func() bool { return !ZKSource{W: env.w}.Synced() })
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) { // a bounded observation window, not synchronisation
		if n := len(env.target.r.Instances(naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: name})); n != 2 {
			t.Fatalf("%d instances while ZooKeeper is down", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := env.srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The writer's client redials about once a second; a loaded machine
	// may need several rounds after the JVM is back. A handshake sent while
	// the JVM was still starting can go unanswered, and go-zookeeper then
	// waits 10 × recvTimeout (2/3 of the 10 s session: 67 s) before it
	// redials: that is what failed a 60 s budget at a load average of 16.
	poll.Until(t, 150*time.Second, "writer reconnected", func() bool { return env.c.State() == zk.StateHasSession })
	if err := env.c.Delete(p, -1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "removal after reconnect", func() bool {
		return len(env.target.r.Instances(naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: name})) == 1
	})
}
