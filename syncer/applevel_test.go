package syncer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeAppSource is the application-level catalog in memory; its changes go
// through the fake source's channel, as zkwatch's do.
type fakeAppSource struct {
	src  *fakeSource
	mu   sync.Mutex
	apps map[string]AppSnapshot
	meta map[string]string // "app/revision" → MetadataInfo JSON
}

func (f *fakeAppSource) AppMetadata(_ context.Context, app, revision string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.meta[app+"/"+revision]
	return m, ok, nil
}

func (f *fakeAppSource) AppMetadataPath(app, revision string) string {
	return "/dubbo/metadata/" + app + "/" + revision
}

func (f *fakeAppSource) setMeta(app, revision, content string) {
	f.mu.Lock()
	f.meta[app+"/"+revision] = content
	f.mu.Unlock()
}

func (f *fakeAppSource) Apps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.apps))
}

func (f *fakeAppSource) AppSnapshot(app string) (AppSnapshot, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.apps[app]
	return s, ok
}

// set replaces an application's instances (none: the app is gone).
func (f *fakeAppSource) set(app string, insts ...AppInstance) {
	f.mu.Lock()
	if len(insts) == 0 {
		delete(f.apps, app)
	} else {
		f.apps[app] = AppSnapshot{App: app, Instances: insts}
	}
	f.mu.Unlock()
	f.src.mu.Lock()
	for _, in := range insts {
		f.src.exists[in.Node] = true
	}
	f.src.mu.Unlock()
	f.src.notify(AppKey(app))
}

// appInst is a Java Dubbo 3 instance of app at host:port started at ts (ms).
func appInst(app, host string, port int, ts int64, kv ...string) AppInstance {
	md := map[string]string{
		"dubbo.endpoints":                   fmt.Sprintf(`[{"port":%d,"protocol":"dubbo"}]`, port),
		"dubbo.metadata-service.url-params": fmt.Sprintf(`{"version":"1.0.0","dubbo":"2.0.2","release":"3.3.1","side":"provider","port":"%d","protocol":"dubbo"}`, port),
		"dubbo.metadata.revision":           "871fbc9cb2730caea9b0d858852d5ede",
		"dubbo.metadata.storage-type":       "local",
		"timestamp":                         fmt.Sprint(ts),
	}
	for i := 0; i+1 < len(kv); i += 2 {
		md[kv[i]] = kv[i+1]
	}
	id := Addr(host, port)
	return AppInstance{Node: "/services/" + app + "/" + id, ID: id, Address: host, Port: port, Metadata: md,
		RegistrationTimeUTC: ts + 1000}
}

func TestEngineAppInstances(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.appSrc.set("shop", appInst("shop", "10.0.1.1", 20880, 1700000000000), appInst("shop", "10.0.1.2", 20880, 1700000000000))
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 20880, 100))
	eventually(t, "app instances registered", func() bool {
		return h.has("shop", "10.0.1.1:20880") && h.has("shop", "10.0.1.2:20880") && h.has(fooName, "10.0.0.1:20880")
	})
	in, _ := h.reg.get("shop", "10.0.1.1:20880")
	want := appInst("shop", "10.0.1.1", 20880, 1700000000000).Metadata
	want[MetaSource], want[MetaWorker] = "zk:zk1", "w1"
	if !maps.Equal(in.Metadata, want) || in.Weight != 1 || !in.Enabled || !in.Healthy || !in.Ephemeral {
		t.Fatalf("app instance = %+v", in)
	}
	h.idle()
	if st := h.e.Status(); st.AppDesired != 2 || st.AppRegistered != 2 || st.Desired != 1 || st.Registered != 1 {
		t.Fatalf("status: %+v", st)
	}
	// Update: a new revision.
	h.appSrc.set("shop", appInst("shop", "10.0.1.1", 20880, 1700000000000, "dubbo.metadata.revision", "r2"),
		appInst("shop", "10.0.1.2", 20880, 1700000000000))
	eventually(t, "revision updated", func() bool {
		in, _ := h.reg.get("shop", "10.0.1.1:20880")
		return in.Metadata["dubbo.metadata.revision"] == "r2"
	})
	// Remove one, then the app.
	h.appSrc.set("shop", appInst("shop", "10.0.1.2", 20880, 1700000000000))
	eventually(t, "one removed", func() bool { return !h.has("shop", "10.0.1.1:20880") && h.has("shop", "10.0.1.2:20880") })
	h.appSrc.set("shop")
	eventually(t, "app removed", func() bool { return h.reg.count("shop") == 0 })
	h.idle()
	if st := h.e.Status(); st.AppRegistered != 0 || st.Registered != 1 {
		t.Fatalf("status after removal: %+v", st)
	}
}

// A Java provider restarted on the same ip:port (Curator re-creates the
// same node): the registry already holds the restarted instance (timestamp
// 200, from the previous owner's newer view) while this worker's view still
// shows the old data (timestamp 100). The downgrade is held and reported;
// the newer instance stays registered.
func TestEngineAppStaleDowngrade(t *testing.T) {
	h := newHarness(t, nil)
	neu := BuildAppInstance(appInst("shop", "10.0.1.1", 20880, 200_000_000_000), Marker{Cluster: "zk1", Worker: "w0"})
	h.reg.mu.Lock()
	h.reg.insts["shop"] = map[string]Instance{"10.0.1.1:20880": neu}
	h.reg.mu.Unlock()
	h.start()
	h.appSrc.set("shop", appInst("shop", "10.0.1.1", 20880, 100_000_000_000))
	eventually(t, "downgrade held", func() bool { return h.events.count(EventStaleHeld) == 1 })
	h.idle()
	in, _ := h.reg.get("shop", "10.0.1.1:20880")
	if in.Metadata["timestamp"] != "200000000000" {
		t.Fatalf("registered timestamp %v after the stale downgrade", in.Metadata["timestamp"])
	}
}

// withNacos on the instance and the app's mode skip it (removed once
// registered) and restore it, as for interface-level providers.
func TestEngineAppSkipAndRestore(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.appSrc.set("shop", appInst("shop", "10.0.1.1", 20880, 1), appInst("shop", "10.0.1.2", 20880, 1, "withNacos", "true"),
		AppInstance{Node: "/services/shop/bad", ID: "bad", Address: "", Port: 20880})
	eventually(t, "synced one", func() bool { return h.has("shop", "10.0.1.1:20880") })
	h.idle()
	if h.has("shop", "10.0.1.2:20880") || h.reg.count("shop") != 1 {
		t.Fatalf("withNacos or bad instance registered: %d", h.reg.count("shop"))
	}
	if st := h.e.Status(); st.Skipped[SkipWithNacos] != 1 || st.Skipped[SkipBadAddress] != 1 {
		t.Fatalf("skipped %+v", st.Skipped)
	}
	h.apps.set("shop", ModeNative)
	eventually(t, "native app removed", func() bool { return h.reg.count("shop") == 0 })
	h.apps.set("shop", ModeSync)
	eventually(t, "restored", func() bool { return h.has("shop", "10.0.1.1:20880") })
}

func TestAppTimestamp(t *testing.T) {
	for _, c := range []struct {
		md   map[string]string
		reg  int64
		want int64
	}{
		{map[string]string{"timestamp": "1674960780647"}, 1674960781893, 1674960780647},
		{map[string]string{}, 1674960781893, 1674960781893},              // Java without the key: Curator's time
		{map[string]string{"timestamp": "1795353227"}, 0, 1795353227000}, // seconds
		{map[string]string{"timestamp": "x"}, 0, 0},                      // dubbo-go: neither
	} {
		if got := AppTimestamp(AppInstance{Metadata: c.md, RegistrationTimeUTC: c.reg}); got != c.want {
			t.Errorf("AppTimestamp(%v, %d) = %d, want %d", c.md, c.reg, got, c.want)
		}
	}
}

// Remote metadata, per application all or nothing: an instance whose
// revision's MetadataInfo is not in the config service is not registered
// until the metadata is copied (config dataId app, group revision); a
// registered instance whose new revision cannot be copied stays as it was;
// metadata over the config service's limit is reported and not copied.
func TestEngineAppRemoteMetadata(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxConfigBytes = 64 })
	cfgs := &fakeConfigs{cfg: map[ConfigRef]string{}}
	h.e.deps.Mappings, h.e.deps.Configs = &fakeMappings{src: h.src, nodes: map[string]string{}}, cfgs
	h.start()
	remote := func(rev string) AppInstance {
		return appInst("pay", "10.0.2.1", 20880, 1, "dubbo.metadata.storage-type", "remote", "dubbo.metadata.revision", rev)
	}
	meta := func(rev string) (string, bool) {
		c, ok, _ := cfgs.GetConfig(context.Background(), ConfigRef{Namespace: "public", Group: rev, DataID: "pay"})
		return c, ok
	}
	h.appSrc.set("pay", remote("r1"))
	eventually(t, "missing metadata reported", func() bool { return h.events.count(EventMetadataMissing) == 1 })
	h.idle()
	if h.has("pay", "10.0.2.1:20880") || h.e.Status().Skipped[SkipMetadata] != 1 {
		t.Fatalf("instance registered before its metadata: skipped %v", h.e.Status().Skipped)
	}
	const info = `{"app":"pay","revision":"r1","services":{}}`
	h.appSrc.setMeta("pay", "r1", info)
	h.appSrc.set("pay", remote("r1"))
	eventually(t, "registered with its metadata", func() bool {
		c, ok := meta("r1")
		return h.has("pay", "10.0.2.1:20880") && ok && c == info
	})
	// A new revision whose metadata is missing: the registered r1 stays.
	h.appSrc.set("pay", remote("r2"))
	eventually(t, "r2 missing reported", func() bool { return h.events.count(EventMetadataMissing) == 2 })
	h.idle()
	if in, _ := h.reg.get("pay", "10.0.2.1:20880"); in.Metadata["dubbo.metadata.revision"] != "r1" {
		t.Fatalf("registered revision %q, want r1 held", in.Metadata["dubbo.metadata.revision"])
	}
	// Over the limit: reported, not copied, the instance held.
	h.appSrc.setMeta("pay", "r3", `{"app":"pay","revision":"r3","services":{"x":"`+strings.Repeat("y", 64)+`"}}`)
	h.appSrc.set("pay", remote("r3"))
	eventually(t, "too large reported", func() bool { return h.events.count(EventMetadataMissing) == 3 })
	h.idle()
	if _, ok := meta("r3"); ok {
		t.Fatal("metadata over the limit copied")
	}
	if in, _ := h.reg.get("pay", "10.0.2.1:20880"); in.Metadata["dubbo.metadata.revision"] != "r1" {
		t.Fatalf("registered revision %q, want r1 held", in.Metadata["dubbo.metadata.revision"])
	}
	// Local metadata needs nothing copied.
	h.appSrc.set("pay", appInst("pay", "10.0.2.1", 20880, 1, "dubbo.metadata.revision", "r4"))
	eventually(t, "local revision registered", func() bool {
		in, _ := h.reg.get("pay", "10.0.2.1:20880")
		return in.Metadata["dubbo.metadata.revision"] == "r4"
	})
}

// noConfigs is a target without a config service.
type noConfigs struct{}

func (noConfigs) GetConfig(context.Context, ConfigRef) (string, bool, error) {
	return "", false, fmt.Errorf("%w: 302 RequestHandler Not Found", ErrNoConfigService)
}
func (noConfigs) PublishConfig(context.Context, ConfigRef, string) error { return ErrNoConfigService }
func (noConfigs) RemoveConfig(context.Context, ConfigRef) error          { return ErrNoConfigService }

// Without a config service on the target the engine says so once and
// syncs instances only: remote-metadata instances are registered as they
// are, mappings are not written.
func TestEngineAppNoConfigService(t *testing.T) {
	h := newHarness(t, nil)
	maps := &fakeMappings{src: h.src, nodes: map[string]string{}}
	h.e.deps.Mappings, h.e.deps.Configs = maps, noConfigs{}
	h.start()
	maps.set("org.Pay", "pay", true)
	h.appSrc.set("pay", appInst("pay", "10.0.2.1", 20880, 1, "dubbo.metadata.storage-type", "remote", "dubbo.metadata.revision", "r1"))
	eventually(t, "instance registered", func() bool { return h.has("pay", "10.0.2.1:20880") })
	maps.set("org.Pay2", "pay", true)
	h.idle()
	if n := h.events.count(EventNoConfigService); n != 1 {
		t.Fatalf("%d no-config-service events, want 1", n)
	}
	if n := h.events.count(EventApplyFailed); n != 0 {
		t.Fatalf("%d apply failures", n)
	}
}
