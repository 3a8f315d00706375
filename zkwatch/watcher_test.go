package zkwatch

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/go-zookeeper/zk"
)

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Servers = []string{"127.0.0.1:2181"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, mod := range map[string]func(*Config){
		"Servers":         func(c *Config) { c.Servers = nil },
		"Root":            func(c *Config) { c.Root = "/" },
		"AppRoot":         func(c *Config) { c.AppRoot = "dubbo" },
		"overlap":         func(c *Config) { c.AppRoot = "dubbo/services" },
		"SessionTimeout":  func(c *Config) { c.SessionTimeout = time.Millisecond },
		"ListConcurrency": func(c *Config) { c.ListConcurrency = 0 },
		"RetryBackoff":    func(c *Config) { c.RetryBackoff = 0 },
	} {
		c := good
		mod(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: Validate = %v, want an error naming it", field, err)
		}
		if _, err := New(c, nil, nil); err == nil {
			t.Errorf("%s: New accepted a bad config", field)
		}
	}
}

func TestAddRemoveUpdateProvider(t *testing.T) {
	e := newEnv(t)
	const iface = "org.apache.dubbo.demo.DemoService"
	p1 := addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.0.0.1", 20880, 1700000000000, ""), false)
	w := e.watcher(t, nil)
	rec := record(t, w, nil)
	waitFor(t, "synced", w.Synced)
	s, ok := w.Snapshot(iface)
	if !ok || len(s.Providers) != 1 || s.Providers["10.0.0.1:20880"].Node != p1 {
		t.Fatalf("initial snapshot %+v %v", s, ok)
	}
	if got := w.Services(); len(got) != 1 || got[0] != iface {
		t.Fatalf("Services = %v", got)
	}
	waitFor(t, "first notification", func() bool { return rec.count(iface) >= 1 })

	// Add.
	p2 := addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.0.0.2", 20880, 1700000000001, "version=1.0.0"), true)
	waitFor(t, "added provider", func() bool {
		s, _ := w.Snapshot(iface)
		return s.Providers["10.0.0.2:20880"].Node == p2
	})
	s2, _ := w.Snapshot(iface)
	if s2.Revision <= s.Revision || s2.Providers["10.0.0.2:20880"].URL.Version() != "1.0.0" {
		t.Fatalf("after add: %+v", s2)
	}
	// Update = a new node for the same host:port with a newer timestamp.
	p2b := addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.0.0.2", 20880, 1700000000555, "version=1.0.1"), true)
	del(t, e.c, p2)
	waitFor(t, "updated provider", func() bool {
		s, _ := w.Snapshot(iface)
		return s.Providers["10.0.0.2:20880"].Node == p2b && len(s.Shadowed) == 0
	})
	// Remove.
	del(t, e.c, p1)
	waitFor(t, "removed provider", func() bool {
		s, _ := w.Snapshot(iface)
		_, has := s.Providers["10.0.0.1:20880"]
		return !has && len(s.Providers) == 1
	})
	n := rec.count(iface)
	if n < 2 {
		t.Fatalf("only %d notifications", n)
	}
	// ProviderExists asks ZooKeeper.
	ctx := context.Background()
	if ok, err := w.ProviderExists(ctx, p2b); err != nil || !ok {
		t.Fatalf("ProviderExists(live) = %v, %v", ok, err)
	}
	if ok, err := w.ProviderExists(ctx, p1); err != nil || ok {
		t.Fatalf("ProviderExists(deleted) = %v, %v", ok, err)
	}
	if _, err := w.ProviderExists(ctx, "relative"); !errors.Is(err, ErrBadPath) {
		t.Fatalf("ProviderExists(bad) = %v", err)
	}
}

func TestNewServicesAndNonServiceChildren(t *testing.T) {
	e := newEnv(t)
	// Dubbo's own nodes and a service without providers yet.
	mkdirs(t, e.c, "/dubbo/config/dubbo/dubbo.properties")
	mkdirs(t, e.c, "/dubbo/mapping/com.foo.Bar")
	mkdirs(t, e.c, "/dubbo/metadata/app/rev")
	mkdirs(t, e.c, "/dubbo/com.foo.Later/consumers/"+url.QueryEscape("consumer://10.9.9.9/com.foo.Later?category=consumers&side=consumer"))
	mkdirs(t, e.c, "/dubbo/leaf-node")
	w := e.watcher(t, nil)
	rec := record(t, w, nil)
	waitFor(t, "synced", w.Synced)
	if got := w.Services(); len(got) != 0 {
		t.Fatalf("Services = %v, want none", got)
	}
	if _, ok := w.Snapshot("com.foo.Later"); ok {
		t.Fatal("snapshot of a service without providers")
	}
	// Providers appear under the known node: picked up.
	addProvider(t, e.c, "dubbo", "com.foo.Later", provURL("com.foo.Later", "10.1.0.1", 20880, 1700000000000, ""), true)
	waitFor(t, "later providers", func() bool {
		s, ok := w.Snapshot("com.foo.Later")
		return ok && len(s.Providers) == 1 && s.Consumers == 1
	})
	// A brand-new service node: discovered.
	addProvider(t, e.c, "dubbo", "com.foo.New", provURL("com.foo.New", "10.1.0.2", 20880, 1700000000000, ""), true)
	waitFor(t, "new service", func() bool {
		s, ok := w.Snapshot("com.foo.New")
		return ok && len(s.Providers) == 1
	})
	waitFor(t, "notification", func() bool { return rec.count("com.foo.New") >= 1 })
	if got := w.Services(); len(got) != 2 {
		t.Fatalf("Services = %v", got)
	}
	if rec.count("config") != 0 || rec.count("mapping") != 0 {
		t.Fatal("notified a non-service node")
	}
	// Removing the whole service node is a removal with a notification.
	before := rec.count("com.foo.New")
	for _, p := range []string{"/dubbo/com.foo.New/providers"} {
		kids, _, _ := e.c.Children(p)
		for _, k := range kids {
			del(t, e.c, p+"/"+k)
		}
		del(t, e.c, p)
	}
	del(t, e.c, "/dubbo/com.foo.New")
	waitFor(t, "service removed", func() bool {
		_, ok := w.Snapshot("com.foo.New")
		return !ok && rec.count("com.foo.New") > before
	})
}

func TestRootCreatedLaterCustomRoot(t *testing.T) {
	e := newEnv(t)
	w := e.watcher(t, func(c *Config) { c.Root = "custom/registry" })
	waitFor(t, "root seen missing", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.rootMissing
	})
	if w.Synced() {
		t.Fatal("synced without a root")
	}
	addProvider(t, e.c, "custom/registry", "com.foo.X", provURL("com.foo.X", "10.2.0.1", 20880, 1700000000000, ""), true)
	waitFor(t, "root appears", func() bool {
		s, ok := w.Snapshot("com.foo.X")
		return ok && len(s.Providers) == 1 && w.Synced()
	})
	if p := w.mustSnapshot(t, "com.foo.X").Providers["10.2.0.1:20880"].Node; !strings.HasPrefix(p, "/custom/registry/com.foo.X/providers/") {
		t.Fatalf("node %q", p)
	}
}

func (w *Watcher) mustSnapshot(t testing.TB, name string) ServiceSnapshot {
	t.Helper()
	s, ok := w.Snapshot(name)
	if !ok {
		t.Fatalf("no snapshot for %s", name)
	}
	return s
}

func TestGarbageNodesSkippedAndCountedOnce(t *testing.T) {
	e := newEnv(t)
	const iface = "com.foo.Garbage"
	good := addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.3.0.1", 20880, 1700000000000, ""), true)
	dir := "/dubbo/" + iface + "/providers"
	for _, name := range []string{"%ZZnot-decodable", "just-garbage", url.QueryEscape("dubbo://:123/x?a=b")} {
		if _, err := e.c.Create(dir+"/"+name, []byte{0xff, 0x00}, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	mkdirs(t, e.c, "/dubbo/%ZZbad-service/providers")
	mkdirs(t, e.c, dir+"/"+url.QueryEscape("dubbo://10.3.0.9:1/x")+"/deeper/still") // deeper than expected: a provider all the same
	var mu sync.Mutex
	told := map[string]string{}
	w := e.watcher(t, func(c *Config) {
		c.OnSkip = func(p, reason string) {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := told[p]; dup {
				t.Errorf("OnSkip told twice of %s", p)
			}
			told[p] = reason
		}
	})
	waitFor(t, "synced", w.Synced)
	s := w.mustSnapshot(t, iface)
	if len(s.Providers) != 2 || s.Providers["10.3.0.1:20880"].Node != good {
		t.Fatalf("providers %v", providerAddrs(s))
	}
	skipped := w.Skipped()
	if len(skipped) != 4 {
		t.Fatalf("skipped %v", skipped)
	}
	if skipped[dir+"/%ZZnot-decodable"] != "undecodable" || skipped[dir+"/just-garbage"] != "unparsable" || skipped["/dubbo/%ZZbad-service"] != "undecodable" {
		t.Fatalf("skipped reasons %v", skipped)
	}
	total := counter(t, w.m.skipped.WithLabelValues("unparsable")) + counter(t, w.m.skipped.WithLabelValues("undecodable"))
	// Another change re-lists the providers: the garbage is not counted again.
	addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.3.0.2", 20880, 1700000000000, ""), true)
	waitFor(t, "third provider", func() bool { return len(w.mustSnapshot(t, iface).Providers) == 3 })
	again := counter(t, w.m.skipped.WithLabelValues("unparsable")) + counter(t, w.m.skipped.WithLabelValues("undecodable"))
	if total != 4 || again != total {
		t.Fatalf("skipped counters %v then %v, want 4 both times", total, again)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(told, skipped) {
		t.Fatalf("OnSkip told %v, Skipped says %v", told, skipped)
	}
}

func TestACLDeniedNodeSkipped(t *testing.T) {
	e := newEnv(t)
	addProvider(t, e.c, "dubbo", "com.foo.Open", provURL("com.foo.Open", "10.4.0.1", 20880, 1700000000000, ""), true)
	mkdirs(t, e.c, "/dubbo/com.foo.Secret")
	acl := zk.DigestACL(zk.PermAll, "owner", "secret")
	if err := e.c.AddAuth("digest", []byte("owner:secret")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Create("/dubbo/com.foo.Secret/providers", nil, 0, acl); err != nil {
		t.Fatal(err)
	}
	w := e.watcher(t, nil)
	waitFor(t, "open service", func() bool { _, ok := w.Snapshot("com.foo.Open"); return ok })
	waitFor(t, "acl skip", func() bool { return w.Skipped()["/dubbo/com.foo.Secret/providers"] == "acl" })
	waitFor(t, "synced despite the unreadable node", w.Synced)
	if _, ok := w.Snapshot("com.foo.Secret"); ok {
		t.Fatal("snapshot of an unreadable service")
	}
}

func TestConfiguratorDisablesProvider(t *testing.T) {
	e := newEnv(t)
	const iface = "com.foo.Conf"
	addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.5.0.1", 20880, 1700000000000, ""), true)
	addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.5.0.2", 20880, 1700000000000, ""), true)
	w := e.watcher(t, nil)
	waitFor(t, "synced", w.Synced)
	ov := "override://10.5.0.2:20880/" + iface + "?category=configurators&disabled=true&dynamic=false&enabled=true"
	mkdirs(t, e.c, "/dubbo/"+iface+"/configurators/"+url.QueryEscape(ov))
	waitFor(t, "disabled", func() bool {
		s := w.mustSnapshot(t, iface)
		return s.Providers["10.5.0.2:20880"].Disabled && s.Configurators == 1
	})
	if w.mustSnapshot(t, iface).Providers["10.5.0.1:20880"].Disabled {
		t.Fatal("wrong provider disabled")
	}
}

func TestBurstIsCoalesced(t *testing.T) {
	e := newEnv(t)
	const iface = "com.foo.Burst"
	addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.6.0.0", 20880, 1700000000000, ""), true)
	w := e.watcher(t, nil)
	waitFor(t, "synced", w.Synced)
	// Nobody reads Changes during the burst.
	for i := 1; i <= 100; i++ {
		addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.6.0."+itoa(i), 20880, 1700000000000, ""), true)
	}
	waitFor(t, "burst applied", func() bool { return len(w.mustSnapshot(t, iface).Providers) == 101 })
	rec := record(t, w, nil)
	waitFor(t, "notified", func() bool { return rec.count(iface) >= 1 })
	// Once the queue is idle nothing more can come; at most the initial one,
	// the one handed over during the burst and one after it.
	waitFor(t, "idle", func() bool { return w.q.busy() == 0 })
	rec.close()
	if n := rec.count(iface); n > 3 {
		t.Fatalf("%d notifications for a burst of 100 changes", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestDisconnectDeliversNothing: while ZooKeeper is unreachable the watcher
// keeps its last state and delivers nothing; after reconnecting in the same
// session it catches up.
func TestDisconnectDeliversNothing(t *testing.T) {
	e := newEnv(t)
	const iface = "com.foo.Cut"
	addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.7.0.1", 20880, 1700000000000, ""), true)
	proxy, err := zkserver.NewProxy(e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	w := e.watcher(t, func(c *Config) { c.Servers = []string{proxy.Addr()}; c.SessionTimeout = 20 * time.Second })
	waitFor(t, "synced", w.Synced)
	rec := record(t, w, nil)
	waitFor(t, "first notification", func() bool { return rec.total() >= 1 })
	seen := rec.total()
	proxy.Cut()
	waitFor(t, "disconnected", func() bool { return !w.Connected() })
	p2 := addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.7.0.2", 20880, 1700000000000, ""), true)
	kids, _, _ := e.c.Children("/dubbo/" + iface + "/providers")
	for _, k := range kids {
		if !strings.Contains(p2, k) {
			del(t, e.c, "/dubbo/"+iface+"/providers/"+k)
		}
	}
	// Give the watcher every chance to do something wrong: wait until the
	// client has tried (and failed) to reconnect a few times.
	waitFor(t, "reconnect attempts", func() bool {
		return counter(t, w.m.sessionEvents.WithLabelValues(zk.StateConnecting.String())) >= 3
	})
	if rec.total() != seen {
		t.Fatalf("notifications while disconnected: %d -> %d", seen, rec.total())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if _, err := w.ProviderExists(ctx, p2); err == nil {
		t.Fatal("ProviderExists answered while disconnected")
	}
	cancel()
	s := w.mustSnapshot(t, iface)
	if _, ok := s.Providers["10.7.0.1:20880"]; !ok || len(s.Providers) != 1 {
		t.Fatalf("snapshot changed while disconnected: %v", providerAddrs(s))
	}
	proxy.Heal()
	waitFor(t, "caught up", func() bool {
		s := w.mustSnapshot(t, iface)
		_, old := s.Providers["10.7.0.1:20880"]
		return !old && s.Providers["10.7.0.2:20880"].Node == p2
	})
	if got := counter(t, w.m.expiries); got != 0 {
		t.Fatalf("expiries = %v, want 0 (same session)", got)
	}
}

// TestSessionExpiry: the session expires while the watcher is cut off; after
// it reconnects it re-lists everything and notifies every service with a
// fresh snapshot; changes made meanwhile are all there.
func TestSessionExpiry(t *testing.T) {
	e := newEnv(t)
	addProvider(t, e.c, "dubbo", "com.foo.A", provURL("com.foo.A", "10.8.0.1", 20880, 1700000000000, ""), true)
	addProvider(t, e.c, "dubbo", "com.foo.Same", provURL("com.foo.Same", "10.8.0.5", 20880, 1700000000000, ""), true)
	gonePath := addProvider(t, e.c, "dubbo", "com.foo.Gone", provURL("com.foo.Gone", "10.8.0.9", 20880, 1700000000000, ""), false)
	inst := func(ip string, port int) []byte {
		return []byte(`{"name":"app-x","id":"` + ip + ":" + itoa(port) + `","address":"` + ip + `","port":` + itoa(port) + `,"payload":{"metadata":{"dubbo.metadata.revision":"r` + itoa(port) + `"}}}`)
	}
	mkdirs(t, e.c, "/services/app-x")
	if _, err := e.c.Create("/services/app-x/10.8.1.1:1", inst("10.8.1.1", 1), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	proxy, err := zkserver.NewProxy(e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	w := e.watcher(t, func(c *Config) { c.Servers = []string{proxy.Addr()}; c.SessionTimeout = time.Second })
	waitFor(t, "synced", w.Synced)
	waitFor(t, "app instance", func() bool { got, _ := w.AppInstances("app-x"); return len(got) == 1 })
	revSame := w.mustSnapshot(t, "com.foo.Same").Revision
	// A probe session through the same proxy with a 4x longer timeout: when
	// its ephemeral node is gone, the watcher's session is surely expired.
	probe := client(t, proxy.Addr(), 4*time.Second)
	if _, err := probe.Create("/expiry-probe", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	var empty atomic.Int32
	rec := record(t, w, func(name string) {
		if s, ok := w.Snapshot(name); name == "com.foo.A" && (!ok || len(s.Providers) == 0) {
			empty.Add(1)
		}
	})

	proxy.Cut()
	waitFor(t, "disconnected", func() bool { return !w.Connected() })
	// Changes while cut off: A gets a second provider, Gone disappears, New appears.
	addProvider(t, e.c, "dubbo", "com.foo.A", provURL("com.foo.A", "10.8.0.2", 20880, 1700000000000, ""), true)
	del(t, e.c, gonePath)
	del(t, e.c, "/dubbo/com.foo.Gone/providers")
	del(t, e.c, "/dubbo/com.foo.Gone")
	addProvider(t, e.c, "dubbo", "com.foo.New", provURL("com.foo.New", "10.8.0.3", 20880, 1700000000000, ""), true)
	if _, err := e.c.Set("/services/app-x/10.8.1.1:1", inst("10.8.1.1", 2), -1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Create("/services/app-x/10.8.1.2:3", inst("10.8.1.2", 3), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "server expired the sessions", func() bool {
		ok, _, err := e.c.Exists("/expiry-probe")
		return err == nil && !ok
	})
	if s := w.mustSnapshot(t, "com.foo.A"); len(s.Providers) != 1 {
		t.Fatalf("snapshot changed while cut off: %v", providerAddrs(s))
	}
	proxy.Heal()
	waitFor(t, "expiry seen", func() bool { return counter(t, w.m.expiries) == 1 })
	waitFor(t, "re-listed", func() bool {
		a, okA := w.Snapshot("com.foo.A")
		_, okGone := w.Snapshot("com.foo.Gone")
		n, okN := w.Snapshot("com.foo.New")
		return w.Synced() && okA && len(a.Providers) == 2 && !okGone && okN && len(n.Providers) == 1
	})
	w.mu.Lock()
	if n := scanUnready(w); n != w.unready {
		t.Errorf("after the expiry Synced counts %d services unready, a scan %d", w.unready, n)
	}
	w.mu.Unlock()
	// Every service, changed or not, gets a fresh snapshot and a notification.
	waitFor(t, "fresh snapshot of an unchanged service", func() bool {
		return w.mustSnapshot(t, "com.foo.Same").Revision > revSame && rec.count("com.foo.Same") >= 1
	})
	waitFor(t, "removal notified", func() bool { return rec.count("com.foo.Gone") >= 1 })
	waitFor(t, "app instances re-read", func() bool {
		got, _ := w.AppInstances("app-x")
		return len(got) == 2 && got[0].Port == 2 && got[1].Port == 3
	})
	// Watches are armed again in the new session: a later change arrives.
	if _, err := e.c.Set("/services/app-x/10.8.1.1:1", inst("10.8.1.1", 4), -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "app instance change after expiry", func() bool {
		got, _ := w.AppInstances("app-x")
		return len(got) == 2 && got[0].Port == 4
	})
	addProvider(t, e.c, "dubbo", "com.foo.Same", provURL("com.foo.Same", "10.8.0.6", 20880, 1700000000000, ""), true)
	waitFor(t, "provider change after expiry", func() bool { return len(w.mustSnapshot(t, "com.foo.Same").Providers) == 2 })
	if empty.Load() != 0 {
		t.Fatalf("%d empty snapshots of com.foo.A delivered", empty.Load())
	}
}

// TestZooKeeperRestartNoRemovals: a restart with the same data keeps the
// session; no provider ever disappears from a delivered snapshot.
func TestZooKeeperRestartNoRemovals(t *testing.T) {
	e := newEnv(t)
	const iface = "com.foo.Restart"
	addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.9.0.1", 20880, 1700000000000, ""), true)
	addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.9.0.2", 20880, 1700000000000, "dynamic=false"), false)
	w := e.watcher(t, nil)
	waitFor(t, "synced", w.Synced)
	var shrank atomic.Int32
	rec := record(t, w, func(name string) {
		if s, ok := w.Snapshot(name); !ok || len(s.Providers) < 2 {
			shrank.Add(1)
		}
	})
	if err := e.srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A handshake sent while the JVM was still starting can go unanswered,
	// and go-zookeeper waits 10 × recvTimeout (2/3 of the 10 s session:
	// 67 s) before it redials (seen in syncer's ZooKeeper-down test at a
	// load average of 16): the budget outlasts that, for both clients.
	poll.Until(t, 150*time.Second, "reconnected", w.Connected)
	poll.Until(t, 150*time.Second, "the writer's session back", func() bool { return e.c.State() == zk.StateHasSession })
	// The writer's session survived too: a change after the restart arrives.
	addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.9.0.3", 20880, 1700000000000, ""), true)
	waitFor(t, "post-restart change", func() bool { return len(w.mustSnapshot(t, iface).Providers) == 3 })
	waitFor(t, "notified", func() bool { return rec.count(iface) >= 1 })
	if shrank.Load() != 0 || counter(t, w.m.expiries) != 0 {
		t.Fatalf("shrunk snapshots %d, expiries %v", shrank.Load(), counter(t, w.m.expiries))
	}
}

// TestKillRestartPattern: a provider restarted after kill -9 registers a new
// node (newer timestamp) before its old ephemeral node expires; the provider
// stays present all along and the old node is reported as shadowed.
func TestKillRestartPattern(t *testing.T) {
	e := newEnv(t)
	const iface = "com.foo.Kill"
	const addr = "10.10.0.1:20880"
	old := addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.10.0.1", 20880, 1700000000000, "pid=1"), true)
	w := e.watcher(t, nil)
	waitFor(t, "synced", w.Synced)
	var missing atomic.Int32
	record(t, w, func(name string) {
		if s, ok := w.Snapshot(name); !ok || s.Providers[addr].Node == "" {
			missing.Add(1)
		}
	})
	for round := 0; round < 5; round++ {
		ts := int64(1700000001000 + round)
		fresh := addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.10.0.1", 20880, ts, "pid="+itoa(round+2)), true)
		waitFor(t, "new node wins, old shadowed", func() bool {
			s := w.mustSnapshot(t, iface)
			return s.Providers[addr].Node == fresh && len(s.Shadowed) == 1 && s.Shadowed[0].Node == old
		})
		del(t, e.c, old)
		waitFor(t, "old node gone", func() bool {
			s := w.mustSnapshot(t, iface)
			return s.Providers[addr].Node == fresh && len(s.Shadowed) == 0
		})
		old = fresh
	}
	if missing.Load() != 0 {
		t.Fatalf("provider missing from %d snapshots", missing.Load())
	}
}

func TestAppLevelInstances(t *testing.T) {
	e := newEnv(t)
	java := `{"name":"first-dubbo-provider","id":"30.221.146.35:20880","address":"30.221.146.35","port":20880,"sslPort":null,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"30.221.146.35:20880","name":"first-dubbo-provider","metadata":{"dubbo.endpoints":"[{\"port\":20880,\"protocol\":\"dubbo\"}]","dubbo.metadata.revision":"871fbc9cb2730caea9b0d858852d5ede","dubbo.metadata.storage-type":"local","timestamp":"1674960780647"}},"registrationTimeUTC":1674960781893,"serviceType":"DYNAMIC","uriSpec":null}`
	goInst := `{"name":"demo-provider","id":"192.0.2.2:20000","address":"192.0.2.2","port":20000,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"192.0.2.2:20000","name":"demo-provider","metadata":{"dubbo.endpoints":"[{\"port\":20000,\"protocol\":\"tri\"}]","registry.id":"zk"}}}`
	mkdirs(t, e.c, "/services/first-dubbo-provider")
	mkdirs(t, e.c, "/services/demo-provider")
	for p, data := range map[string]string{
		"/services/first-dubbo-provider/30.221.146.35:20880": java,
		"/services/demo-provider/192.0.2.2:20000":            goInst,
		"/services/demo-provider/garbage":                    "{not json",
	} {
		if _, err := e.c.Create(p, []byte(data), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	w := e.watcher(t, nil)
	waitFor(t, "apps", func() bool { return len(w.Apps()) == 2 })
	got, ok := w.AppInstances("first-dubbo-provider")
	if !ok || len(got) != 1 || got[0].Address != "30.221.146.35" || got[0].Port != 20880 ||
		got[0].Metadata["dubbo.metadata.revision"] != "871fbc9cb2730caea9b0d858852d5ede" || got[0].ServiceType != "DYNAMIC" {
		t.Fatalf("java instance %+v", got)
	}
	waitFor(t, "garbage skipped", func() bool { return w.Skipped()["/services/demo-provider/garbage"] == "unparsable" })
	got, _ = w.AppInstances("demo-provider")
	if len(got) != 1 || got[0].Port != 20000 {
		t.Fatalf("go instance %+v", got)
	}
	del(t, e.c, "/services/demo-provider/192.0.2.2:20000")
	waitFor(t, "instance removed", func() bool { got, _ := w.AppInstances("demo-provider"); return len(got) == 0 })
}

func TestStopIdempotent(t *testing.T) {
	e := newEnv(t)
	w := e.watcher(t, nil)
	waitFor(t, "connected", w.Connected)
	ctx := context.Background()
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop = %v", err)
	}
	if _, err := w.ProviderExists(ctx, "/x"); !errors.Is(err, ErrStopped) {
		t.Fatalf("ProviderExists after Stop = %v", err)
	}
}

// TestNoLostUpdates: concurrent writers add and remove providers on a few
// services as fast as they can; once they stop, every snapshot equals what
// ZooKeeper holds (no change lost between a watch firing and its re-arm).
func TestNoLostUpdates(t *testing.T) {
	e := newEnv(t)
	services := []string{"com.foo.S0", "com.foo.S1", "com.foo.S2"}
	for _, s := range services {
		addProvider(t, e.c, "dubbo", s, provURL(s, "10.11.0.1", 20880, 1700000000000, ""), true)
	}
	w := e.watcher(t, func(c *Config) { c.ListConcurrency = 4 })
	rec := record(t, w, nil)
	waitFor(t, "synced", w.Synced)
	const writers, ops = 4, 150
	errs := make(chan error, writers)
	for g := 0; g < writers; g++ {
		go func(g int) {
			var mine []string
			for i := 0; i < ops; i++ {
				svc := services[(g+i)%len(services)]
				if i%3 == 2 && len(mine) > 0 {
					if err := e.c.Delete(mine[0], -1); err != nil {
						errs <- err
						return
					}
					mine = mine[1:]
					continue
				}
				u := provURL(svc, "10.12."+itoa(g)+"."+itoa(i%250+1), 20880+i, 1700000000000+int64(i), "")
				p := "/dubbo/" + svc + "/providers/" + url.QueryEscape(u)
				if _, err := e.c.Create(p, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
					errs <- err
					return
				}
				mine = append(mine, p)
			}
			errs <- nil
		}(g)
	}
	for g := 0; g < writers; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, svc := range services {
		kids, _, err := e.c.Children("/dubbo/" + svc + "/providers")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, k := range kids {
			want["/dubbo/"+svc+"/providers/"+k] = true
		}
		waitFor(t, "snapshot of "+svc+" equals ZooKeeper", func() bool {
			s := w.mustSnapshot(t, svc)
			got := map[string]bool{}
			for _, p := range s.Providers {
				got[p.Node] = true
			}
			for _, p := range s.Shadowed {
				got[p.Node] = true
			}
			if len(got) != len(want) {
				return false
			}
			for n := range want {
				if !got[n] {
					return false
				}
			}
			return true
		})
		if rec.count(svc) < 1 {
			t.Fatalf("no notification for %s", svc)
		}
	}
	if cat := w.Catalog(); len(cat) != len(services) {
		t.Fatalf("Catalog has %d services", len(cat))
	}
}
