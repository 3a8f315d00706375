package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
)

// haRig is the real parts of a sync HA test: MariaDB, ZooKeeper with a
// seeded catalog, the registry node, and `ferry sync` child processes.
type haRig struct {
	t        testing.TB
	services int
	db       *mysqlserver.Server
	dsn      string
	zk       *zkserver.Server
	loader   *zkload.Loader
	reg      *registryserver.Server
	token    string // a viewer's API token for the workers' consoles
}

func newHARig(t testing.TB, services, instances int) *haRig {
	t.Helper()
	r := &haRig{t: t, services: services, db: mysqlserver.ForTest(t), zk: zkserver.ForTest(t)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if r.dsn, err = r.db.CreateDatabase(ctx, "ha"); err != nil {
		t.Fatal(err)
	}
	r.token = consoleToken(t, r.dsn)
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{r.zk.Addr()}
	lcfg.Services, lcfg.Instances = services, instances
	lcfg.WithNacosShare, lcfg.VersionShare, lcfg.GroupShare = 0, 0, 0
	if r.loader, err = zkload.Connect(ctx, lcfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.loader.Close)
	if _, err := r.loader.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	rcfg := registryserver.DefaultConfig()
	rcfg.Port = 0
	rcfg.DataDir = t.TempDir()
	if r.reg, err = registryserver.Open(rcfg, slog.New(slog.DiscardHandler), nil); err != nil {
		t.Fatal(err)
	}
	if err := r.reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.reg.Stop() })
	return r
}

// syncArgs are a worker's flags against the rig.
func (r *haRig) syncArgs(id, http string, extra ...string) []string {
	return append([]string{"sync", "-zk", r.zk.Addr(), "-registry", r.reg.HTTPAddr().String(), "-db", r.dsn,
		"-http", http, "-worker-id", id}, extra...)
}

// healthy maps every healthy synced instance ("service/ip:port"), as a
// consumer asking for healthy instances only sees it, to the worker its
// marker names.
func (r *haRig) healthy() map[string]string { return r.healthyMeta("ferry.worker") }

// healthyMeta maps every healthy instance ("service/ip:port") to its
// metadata value under key.
func (r *haRig) healthyMeta(key string) map[string]string {
	out := map[string]string{}
	for _, k := range r.reg.Naming().Services() {
		info, err := r.reg.Naming().Select(k, nil, true)
		if err != nil {
			continue
		}
		for _, h := range info.Hosts {
			out[k.Name+"/"+h.IP+":"+fmt.Sprint(h.Port)] = h.Metadata[key]
		}
	}
	return out
}

// twoWorkers starts `ferry sync` processes w1 and w2, waits until they
// share the shards with every instance registered once, and returns w1,
// their status addresses and the healthy instances then (the set a
// sampler must find at every sample).
func (r *haRig) twoWorkers(want int) (w1 *exec.Cmd, addr1, addr2 string, must map[string]bool) {
	r.t.Helper()
	addr1, addr2 = freeAddr(r.t), freeAddr(r.t)
	w1 = startFerry(r.t, "w1", r.syncArgs("w1", addr1)...)
	startFerry(r.t, "w2", r.syncArgs("w2", addr2)...)
	r.waitShared([]string{addr1, addr2}, want)
	must = map[string]bool{}
	for k := range r.healthy() {
		must[k] = true
	}
	return w1, addr1, addr2, must
}

// instKey is the healthy() key of instance j of service i.
func (r *haRig) instKey(i, j int) string {
	return "providers:" + r.loader.Interface(i) + "::/" + r.loader.Host(i, j) + ":20880"
}

// addProvider creates a provider node for instance j of service i.
func (r *haRig) addProvider(i, j int) {
	r.t.Helper()
	p := r.loader.ProviderPath(i, r.loader.ProviderURL(i, j, time.Now().UnixMilli()))
	if _, err := r.loader.Conn().Create(p, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		r.t.Fatalf("create %s: %v", p, err)
	}
}

// removeProvider deletes every provider node of instance j of service i.
func (r *haRig) removeProvider(i, j int) {
	r.t.Helper()
	dir := r.loader.ServicePath(i) + "/providers"
	kids, _, err := r.loader.Conn().Children(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	host := "dubbo://" + r.loader.Host(i, j) + ":20880/"
	n := 0
	for _, k := range kids {
		if u, err := url.QueryUnescape(k); err == nil && strings.HasPrefix(u, host) {
			if err := r.loader.Conn().Delete(dir+"/"+k, -1); err != nil {
				r.t.Fatal(err)
			}
			n++
		}
	}
	if n == 0 {
		r.t.Fatalf("no provider node of %s under %s", host, dir)
	}
}

// sampler checks every 100 ms that every instance of must is healthy in
// the registry (a consumer's healthy-only view).
type sampler struct {
	mu      sync.Mutex
	must    map[string]bool
	samples int
	misses  []string
	stop    chan struct{}
	wg      sync.WaitGroup
}

func (r *haRig) sample(must map[string]bool) *sampler {
	return sampleView(must, func() (map[string]string, error) { return r.healthy(), nil })
}

// sampleView checks every 100 ms that every instance of must is in view's
// answer (a consumer's healthy-only view; an error counts as a miss).
func sampleView(must map[string]bool, view func() (map[string]string, error)) *sampler {
	s := &sampler{must: must, stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case at := <-tk.C:
				h, err := view()
				s.mu.Lock()
				s.samples++
				var miss []string
				for k := range s.must {
					if _, ok := h[k]; !ok {
						miss = append(miss, k)
					}
				}
				if (err != nil || len(miss) > 0) && len(s.misses) < 20 {
					sort.Strings(miss)
					s.misses = append(s.misses, fmt.Sprintf("%s: %d missing or unhealthy (e.g. %v) %v", at.Format("15:04:05.000"), len(miss), miss[:min(len(miss), 1)], err))
				}
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// done stops the sampler and fails t if any sample missed an instance.
func (s *sampler) done(t *testing.T) {
	t.Helper()
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("%d samples at 100 ms, %d instances each", s.samples, len(s.must))
	for _, m := range s.misses {
		t.Error(m)
	}
}

// waitShared waits until the workers own every shard between them and
// every seeded instance is healthy, registered once.
func (r *haRig) waitShared(addrs []string, want int) {
	r.t.Helper()
	var diag string
	defer func() {
		if r.t.Failed() {
			r.t.Logf("last state: %s", diag)
		}
	}()
	poll.Every(r.t, 90*time.Second, httpPoll, "the workers sharing the shards and every instance healthy", func() bool {
		total := 0
		for _, a := range addrs {
			st, err := workerStatus(a, r.token)
			if err != nil || st.OwnedKeys == 0 {
				diag = fmt.Sprintf("%s: %+v %v", a, st, err)
				return false
			}
			total += st.OwnedKeys
		}
		h := r.healthy()
		diag = fmt.Sprintf("%d shards owned, %d healthy instances", total, len(h))
		return total == 256 && len(h) == want
	})
}

// TestStoreOutageNothingUnhealthy: two `ferry sync` workers on MariaDB.
// The database hangs (SIGSTOP: connections left open), for longer than the
// registry's unhealthy (15 s) and delete (30 s) timeouts together, then
// continues; later it is killed and restarted. A consumer's healthy-only
// view sampled every 100 ms never misses an instance, and the ZooKeeper
// changes made during each outage (a provider gone, a provider new) are
// applied once the leases are confirmed again, not before.
//
// Scaling: the hang lasts 60 s by default (twice the delete timeout, four
// times the unhealthy timeout: what was lost before this fix is lost within
// 45 s). FERRY_TEST_STORE_OUTAGE=5m runs the 5-minute variant; nothing in
// the mechanism depends on the length (a lease kept is renewed with its
// epoch however long it lapsed).
func TestStoreOutageNothingUnhealthy(t *testing.T) {
	if testing.Short() {
		t.Skip("store outage test takes about two minutes")
	}
	outage := 60 * time.Second
	if v := os.Getenv("FERRY_TEST_STORE_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		outage = d
	}
	const services, instances = 20, 3
	r := newHARig(t, services, instances)
	addr1, addr2 := freeAddr(t), freeAddr(t)
	startFerry(t, "w1", r.syncArgs("w1", addr1)...)
	startFerry(t, "w2", r.syncArgs("w2", addr2)...)
	want := services * instances
	r.waitShared([]string{addr1, addr2}, want)

	// Every instance must stay healthy through the outages but the two
	// this test removes from ZooKeeper.
	must := map[string]bool{}
	for k := range r.healthy() {
		must[k] = true
	}
	gone1, gone2 := r.instKey(0, 0), r.instKey(1, 0)
	delete(must, gone1)
	delete(must, gone2)
	smp := r.sample(must)

	// 1. The database hangs.
	if err := r.db.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			_ = r.db.Resume()
		}
	}()
	poll.Every(t, 30*time.Second, httpPoll, "both workers to report the outage and keep their shards", func() bool {
		for _, a := range []string{addr1, addr2} {
			st, err := workerStatus(a, r.token)
			if err != nil || st.StoreReachable || st.KeptShards == 0 || st.OwnedKeys != 0 {
				return false
			}
		}
		return true
	})
	r.removeProvider(0, 0)
	r.addProvider(services-1, instances) // a new instance of the last service
	added1 := r.instKey(services-1, instances)
	// Observation window: the changes must not be applied while the
	// leases cannot be proved (no deregistration, no registration).
	for time.Since(paused) < outage {
		h := r.healthy()
		if _, ok := h[gone1]; !ok {
			t.Fatalf("%s deregistered (or let expire) during the store outage", gone1)
		}
		if _, ok := h[added1]; ok {
			t.Fatalf("%s registered during the store outage", added1)
		}
		time.Sleep(500 * time.Millisecond) // observation interval, not synchronisation
	}
	if err := r.db.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	took := poll.Every(t, 30*time.Second, httpPoll, "the outage's ZooKeeper changes applied", func() bool {
		h := r.healthy()
		_, stale := h[gone1]
		_, fresh := h[added1]
		return !stale && fresh
	})
	t.Logf("hang of %v: changes applied %v after the database continued", outage, took.Round(time.Millisecond))

	// 2. The database is killed (connections refused: errors, not a hang)
	// and restarted after longer than the unhealthy timeout.
	r.db.Kill()
	killed := time.Now()
	poll.Every(t, 30*time.Second, httpPoll, "both workers to report the outage", func() bool {
		for _, a := range []string{addr1, addr2} {
			if st, err := workerStatus(a, r.token); err != nil || st.StoreReachable || st.KeptShards == 0 {
				return false
			}
		}
		return true
	})
	r.removeProvider(1, 0)
	for time.Since(killed) < 20*time.Second {
		if _, ok := r.healthy()[gone2]; !ok {
			t.Fatalf("%s deregistered (or let expire) while the database was down", gone2)
		}
		time.Sleep(500 * time.Millisecond) // observation interval, not synchronisation
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.db.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	took = poll.Every(t, 30*time.Second, httpPoll, "the kill's ZooKeeper change applied", func() bool {
		_, stale := r.healthy()[gone2]
		return !stale
	})
	t.Logf("kill + restart after 20 s: change applied %v after the restart", took.Round(time.Millisecond))
	smp.done(t)

	// Every instance registered once, by one of the two workers.
	h := r.healthy()
	if len(h) != want-2+1 {
		t.Fatalf("registry holds %d healthy instances at the end, want %d", len(h), want-1)
	}
	poll.Every(t, 30*time.Second, httpPoll, "both workers to own their shards again, nothing kept", func() bool {
		total := 0
		for _, a := range []string{addr1, addr2} {
			st, err := workerStatus(a, r.token)
			if err != nil || !st.StoreReachable || st.KeptShards != 0 {
				return false
			}
			total += st.OwnedKeys
		}
		return total == 256
	})
}
