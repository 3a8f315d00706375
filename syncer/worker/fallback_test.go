package worker

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/syncer"
)

// nacosNode is a registry node that behaves like a real Nacos 2.x towards
// Ferry: the batch-beat extension is off. It can be restarted on the same
// ports and data directory.
type nacosNode struct {
	t    *testing.T
	mu   sync.Mutex
	s    *registryserver.Server
	port int
	dir  string
}

func startNacosNode(t *testing.T) *nacosNode {
	t.Helper()
	n := &nacosNode{t: t, dir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *nacosNode) start() {
	n.t.Helper()
	cfg := registryserver.DefaultConfig()
	cfg.Port = n.port
	cfg.DataDir = n.dir
	cfg.GRPC.FerryBatchBeat = false
	cfg.GRPC.PushDelay = 50 * time.Millisecond
	s, err := registryserver.Open(cfg, testLogger(n.t), nil)
	if err != nil {
		n.t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.mu.Lock()
	n.s, n.port = s, s.HTTPAddr().(*net.TCPAddr).Port
	n.mu.Unlock()
}

func (n *nacosNode) stop() {
	n.mu.Lock()
	s := n.s
	n.s = nil
	n.mu.Unlock()
	if s != nil {
		s.Stop()
	}
}

func (n *nacosNode) addr() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }

// TestWorkerNacosFallback runs the assembled worker against a registry node
// without the batch-beat extension (as a real Nacos 2.x): the worker
// detects it, syncs with BatchInstanceRequest per service, follows
// additions and removals in ZooKeeper, re-registers everything after the
// node restarts (the client's redo), and its instances are bound to its
// connection: they vanish as soon as the worker stops (the documented
// trade-off).
func TestWorkerNacosFallback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	zks := zkserver.ForTest(t)
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zks.Addr()}
	lcfg.Services, lcfg.Instances = 4, 3
	lcfg.WithNacosShare, lcfg.VersionShare, lcfg.GroupShare = 0, 0, 0
	loader := seedZK(ctx, t, lcfg)
	node := startNacosNode(t)
	stk := &stack{zk: zks, loader: loader, regAddr: node.addr()}
	w, err := Start(ctx, stk.workerConfig(t, ""), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			w.Stop(context.Background())
		}
	}()

	svc := func(i int) string { return "providers:" + loader.Interface(i) + "::" }
	count := func(i int) int { return len(hosts(t, node.addr(), svc(i))) }
	all := func(want func(i int) int) func() bool {
		return func() bool {
			for i := 0; i < lcfg.Services; i++ {
				if count(i) != want(i) {
					return false
				}
			}
			return true
		}
	}
	seeded := func(int) int { return lcfg.Instances }
	waitFor(t, "every seeded provider in the registry", 60*time.Second, all(seeded))
	cs := w.mgr.clientShares()
	if len(cs) != 1 {
		t.Fatalf("%d registry clients, want 1", len(cs))
	}
	if got := testutil.ToFloat64(cs[0].reg.mode.WithLabelValues(node.addr(), ModeNacosFallback)); got != 1 {
		t.Fatalf("mode gauge nacos-fallback = %v, want 1", got)
	}
	if got := testutil.ToFloat64(cs[0].reg.mode.WithLabelValues(node.addr(), ModeBatchBeat)); got != 0 {
		t.Fatalf("mode gauge batch-beat = %v, want 0", got)
	}
	if ok, known := cs[0].c.BatchBeatSupported(); ok || !known {
		t.Fatalf("client capability = %v (known %v), want known unsupported", ok, known)
	}
	if st := w.Status(); len(st.Tasks) != 1 || st.Tasks[0].RegistryMode != ModeNacosFallback {
		t.Fatalf("status tasks %+v, want one in mode %s", st.Tasks, ModeNacosFallback)
	}

	// A provider added in ZooKeeper appears; one removed disappears.
	added := loader.ProviderPath(0, loader.ProviderURL(0, lcfg.Instances, time.Now().UnixMilli()))
	if _, err := loader.Conn().Create(added, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the added provider in the registry", 30*time.Second, func() bool { return count(0) == lcfg.Instances+1 })
	kids, _, err := loader.Conn().Children(loader.ServicePath(1) + "/providers")
	if err != nil || len(kids) != lcfg.Instances {
		t.Fatalf("providers of service 1: %v, %v", kids, err)
	}
	if err := loader.Conn().Delete(loader.ServicePath(1)+"/providers/"+kids[0], -1); err != nil {
		t.Fatal(err)
	}
	// Removing every provider of a service empties it (the empty batch
	// deregisters the connection's entry).
	kids2, _, err := loader.Conn().Children(loader.ServicePath(2) + "/providers")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kids2 {
		if err := loader.Conn().Delete(loader.ServicePath(2)+"/providers/"+k, -1); err != nil {
			t.Fatal(err)
		}
	}
	want := func(i int) int {
		switch i {
		case 0:
			return lcfg.Instances + 1
		case 1:
			return lcfg.Instances - 1
		case 2:
			return 0
		}
		return lcfg.Instances
	}
	waitFor(t, "removals applied", 30*time.Second, all(want))
	if h := hosts(t, node.addr(), svc(3))[0]; h["ephemeral"] != true {
		t.Fatalf("synced instance %v is not ephemeral", h)
	}

	// The registry node restarts: its instances are gone with it; the
	// client reconnects and redoes every batch.
	node.stop()
	node.start()
	waitFor(t, "every batch redone after the node restarted", 60*time.Second, all(want))

	// The instances are bound to the worker's connection: a stop makes them
	// vanish at once, not after a beat timeout.
	w.Stop(context.Background())
	stopped = true
	waitFor(t, "the worker's instances gone with its connection", 5*time.Second, all(func(int) int { return 0 }))
}

// TestClientRegistryFallbackRelease drives the adapter directly against a
// node without the batch-beat extension: Keep falls back to the batch,
// Deregister re-sends the rest, Release deregisters in the background (the
// instances are connection-bound: a successor registers its own), and a
// Keep right after a Release wins over the pending deregistration.
func TestClientRegistryFallbackRelease(t *testing.T) {
	node := startNacosNode(t)
	ccfg := registryclient.DefaultConfig()
	ccfg.Servers = []string{node.addr()}
	ccfg.Logger = testLogger(t)
	ccfg.Registerer = prometheus.NewRegistry()
	c, err := registryclient.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prom := prometheus.NewRegistry()
	r := newClientRegistry(c, ccfg.Servers, testLogger(t), prom)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ref := syncer.ServiceRef{Namespace: "public", Group: "DEFAULT_GROUP", Name: "providers:org.Foo::"}
	inst := func(ip string) syncer.Instance {
		return syncer.Instance{IP: ip, Port: 20880, Weight: 1, Enabled: true, Healthy: true, Ephemeral: true,
			Metadata: map[string]string{"ferry.source": "zk:test"}}
	}
	list := func() []string {
		got, err := r.List(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		var ips []string
		for _, g := range got {
			ips = append(ips, g.IP)
		}
		return ips
	}
	if r.Mode() != ModeBatchBeat {
		t.Fatalf("mode before any call = %s", r.Mode())
	}
	if err := r.Keep(ctx, ref, []syncer.Instance{inst("10.0.0.1"), inst("10.0.0.2"), inst("10.0.0.3")}); err != nil {
		t.Fatal(err)
	}
	if r.Mode() != ModeNacosFallback {
		t.Fatalf("mode after Keep on a server without batch beats = %s", r.Mode())
	}
	if got := list(); len(got) != 3 {
		t.Fatalf("after Keep: %v", got)
	}
	if c.KeptCount() != 0 {
		t.Fatalf("%d instances left in the beat schedule", c.KeptCount())
	}
	if err := r.Deregister(ctx, ref, []syncer.Instance{inst("10.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 2 || got[0] == "10.0.0.2" || got[1] == "10.0.0.2" {
		t.Fatalf("after Deregister: %v", got)
	}

	// Release deregisters (in the background).
	r.Release(ref)
	r.waitReleases()
	if got := list(); len(got) != 0 {
		t.Fatalf("after Release: %v", got)
	}

	// Keep again, then Release and Keep at once: the later Keep wins.
	for i := 0; i < 20; i++ {
		if err := r.Keep(ctx, ref, []syncer.Instance{inst("10.0.0.1")}); err != nil {
			t.Fatal(err)
		}
		r.Release(ref)
		if err := r.Keep(ctx, ref, []syncer.Instance{inst("10.0.0.1"), inst("10.0.0.4")}); err != nil {
			t.Fatal(err)
		}
		r.waitReleases()
		if got := list(); len(got) != 2 {
			t.Fatalf("round %d: a Release undid the Keep after it: %v", i, got)
		}
		r.Release(ref)
		r.waitReleases()
		if got := list(); len(got) != 0 {
			t.Fatalf("round %d: after Release: %v", i, got)
		}
	}

	// Deregistering instances another connection registered is a no-op
	// here: they are not this connection's.
	if err := r.Deregister(ctx, ref, []syncer.Instance{inst("10.9.9.9")}); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(newModeGauge(prom).WithLabelValues(node.addr(), ModeNacosFallback)); got != 1 {
		t.Fatalf("mode gauge = %v", got)
	}
}
