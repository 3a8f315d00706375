package syncer

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestParseMapping(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{"demo-provider", []string{"demo-provider"}, false},
		{"b,a", []string{"a", "b"}, false},
		{" a , b ", []string{"a", "b"}, false},
		{"", nil, false},
		{"a,,b", []string{"a", "b"}, true},
		{"a,a", []string{"a"}, true},
		{",", nil, true},
	} {
		got, bad := ParseMapping(c.in)
		if !slices.Equal(got, c.want) || bad != c.bad {
			t.Errorf("ParseMapping(%q) = %v, %v; want %v, %v", c.in, got, bad, c.want, c.bad)
		}
	}
}

func TestMergeMapping(t *testing.T) {
	for _, c := range []struct {
		zk, config, written []string
		want                string
	}{
		{[]string{"a"}, nil, nil, "a"},
		{[]string{"a"}, []string{"n"}, nil, "a,n"},              // an app only Nacos knows is kept
		{nil, []string{"a", "n"}, []string{"a"}, "n"},           // ZooKeeper's node gone: ours removed
		{nil, []string{"a"}, []string{"a"}, ""},                 // nothing left: remove the config
		{[]string{"b"}, []string{"a", "b"}, []string{"a"}, "b"}, // a left ZooKeeper's list
		{[]string{"a"}, []string{"a"}, nil, "a"},                // after a restart: union
	} {
		if got := MergeMapping(c.zk, c.config, c.written); got != c.want {
			t.Errorf("MergeMapping(%v, %v, %v) = %q, want %q", c.zk, c.config, c.written, got, c.want)
		}
	}
}

// FuzzMergeMapping: the merge keeps every ZooKeeper app and every app the
// config holds that this sync did not write, adds nothing else, and is a
// sorted list of unique names that ParseMapping reads back unchanged.
func FuzzMergeMapping(f *testing.F) {
	f.Add("a,b", "b,n", "a")
	f.Add("", "a,,a", "a")
	f.Add(" x ", "", "")
	f.Fuzz(func(t *testing.T, zkRaw, cfgRaw, wRaw string) {
		zk, _ := ParseMapping(zkRaw)
		cfg, _ := ParseMapping(cfgRaw)
		written, _ := ParseMapping(wRaw)
		got := MergeMapping(zk, cfg, written)
		apps, bad := ParseMapping(got)
		if bad || strings.Join(apps, ",") != got {
			t.Fatalf("merge %q does not read back (%v, bad=%v)", got, apps, bad)
		}
		for _, a := range zk {
			if !slices.Contains(apps, a) {
				t.Fatalf("zk app %q dropped: %q", a, got)
			}
		}
		for _, a := range cfg {
			if !slices.Contains(written, a) && !slices.Contains(apps, a) {
				t.Fatalf("config-only app %q dropped: %q", a, got)
			}
		}
		for _, a := range apps {
			if !slices.Contains(zk, a) && !slices.Contains(cfg, a) {
				t.Fatalf("app %q from nowhere: %q", a, got)
			}
		}
	})
}

// fakeMappings is the mapping nodes in memory.
type fakeMappings struct {
	src   *fakeSource
	mu    sync.Mutex
	nodes map[string]string
}

func (f *fakeMappings) Mappings() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.nodes))
}

func (f *fakeMappings) Mapping(iface string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.nodes[iface]
	return d, ok
}

func (f *fakeMappings) set(iface, data string, ok bool) {
	f.mu.Lock()
	if ok {
		f.nodes[iface] = data
	} else {
		delete(f.nodes, iface)
	}
	f.mu.Unlock()
	f.src.notify(MappingKey(iface))
}

// fakeConfigs is a config service in memory.
type fakeConfigs struct {
	mu  sync.Mutex
	cfg map[ConfigRef]string
}

func (f *fakeConfigs) GetConfig(_ context.Context, r ConfigRef) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cfg[r]
	return c, ok, nil
}

func (f *fakeConfigs) PublishConfig(_ context.Context, r ConfigRef, content string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg[r] = content
	return nil
}

func (f *fakeConfigs) RemoveConfig(_ context.Context, r ConfigRef) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cfg, r)
	return nil
}

func (f *fakeConfigs) get(dataID string) (string, bool) {
	c, ok, _ := f.GetConfig(context.Background(), ConfigRef{Namespace: "public", Group: MappingGroup, DataID: dataID})
	return c, ok
}

func TestEngineMapping(t *testing.T) {
	h := newHarness(t, nil)
	maps := &fakeMappings{src: h.src, nodes: map[string]string{}}
	cfgs := &fakeConfigs{cfg: map[ConfigRef]string{}}
	h.e.deps.Mappings, h.e.deps.Configs = maps, cfgs
	h.start()
	const iface = "org.apache.dubbo.demo.DemoService"
	// A native app already published its mapping.
	cfgs.PublishConfig(context.Background(), ConfigRef{Namespace: "public", Group: MappingGroup, DataID: iface}, "native-app")
	maps.set(iface, "demo-provider", true)
	eventually(t, "merged", func() bool { c, _ := cfgs.get(iface); return c == "demo-provider,native-app" })
	// A second app joins in ZooKeeper; an excluded one is left out.
	h.apps.set("old-app", ModeExcluded)
	maps.set(iface, "demo-provider,old-app,other", true)
	eventually(t, "second app", func() bool { c, _ := cfgs.get(iface); return c == "demo-provider,native-app,other" })
	// Bad names: skipped with an event naming the node; the good ones stay.
	maps.set(iface, "demo-provider,,other,other", true)
	eventually(t, "bad mapping event", func() bool { return h.events.count(EventBadMapping) == 1 })
	h.idle()
	if c, _ := cfgs.get(iface); c != "demo-provider,native-app,other" {
		t.Fatalf("after bad names: %q", c)
	}
	// ZooKeeper's node goes: only the native app stays.
	maps.set(iface, "", false)
	eventually(t, "ours removed", func() bool { c, _ := cfgs.get(iface); return c == "native-app" })
	// A mapping only ZooKeeper knew is removed with its node.
	maps.set("org.Solo", "solo-app", true)
	eventually(t, "solo written", func() bool { c, _ := cfgs.get("org.Solo"); return c == "solo-app" })
	maps.set("org.Solo", "", false)
	eventually(t, "solo removed", func() bool { _, ok := cfgs.get("org.Solo"); return !ok })
	h.idle()
	h.e.mu.Lock()
	n := len(h.e.mapStates)
	h.e.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d mapping states left", n)
	}
}
