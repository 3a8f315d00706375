package syncer

import (
	"context"
	"testing"
)

func (f *fakeConfigs) getIn(group, dataID string) (string, bool) {
	c, ok, _ := f.GetConfig(context.Background(), ConfigRef{Namespace: "public", Group: group, DataID: dataID})
	return c, ok
}

func (f *fakeConfigs) put(group, dataID, content string) {
	f.PublishConfig(context.Background(), ConfigRef{Namespace: "public", Group: group, DataID: dataID}, content)
}

// A new owner reads the ledger before it writes: it takes out an app an
// earlier owner wrote and ZooKeeper dropped meanwhile, keeps the app only
// Nacos knows, and an app of the ledger switched to native is handed
// over: it leaves the ledger but stays in the config.
func TestEngineMappingLedger(t *testing.T) {
	h := newHarness(t, nil)
	maps := &fakeMappings{src: h.src, nodes: map[string]string{}}
	cfgs := &fakeConfigs{cfg: map[ConfigRef]string{}}
	h.e.deps.Mappings, h.e.deps.Configs = maps, cfgs
	const iface = "org.Pay"
	cfgs.put(MappingGroup, iface, "a,b,n")
	cfgs.put(LedgerMappingGroup, iface, "a,b")
	maps.nodes[iface] = "a"
	h.start()
	eventually(t, "b taken out", func() bool {
		c, _ := cfgs.getIn(MappingGroup, iface)
		l, _ := cfgs.getIn(LedgerMappingGroup, iface)
		return c == "a,n" && l == "a"
	})
	h.apps.set("a", ModeNative)
	eventually(t, "a handed over", func() bool {
		_, ok := cfgs.getIn(LedgerMappingGroup, iface)
		return !ok
	})
	maps.set(iface, "", false)
	h.idle()
	if c, _ := cfgs.getIn(MappingGroup, iface); c != "a,n" {
		t.Fatalf("mapping %q after the node went, want a,n (a is native, n only Nacos knows)", c)
	}
}

// A revision Ferry copied and no synced instance uses any more is removed
// after MetadataGrace, unless an instance in the registry (here a native
// one) still names it; then once that one goes.
func TestEngineMetadataGrace(t *testing.T) {
	h := newHarness(t, nil)
	cfgs := &fakeConfigs{cfg: map[ConfigRef]string{}}
	h.e.deps.Mappings, h.e.deps.Configs = &fakeMappings{src: h.src, nodes: map[string]string{}}, cfgs
	h.start()
	remote := func(rev string) AppInstance {
		return appInst("pay", "10.0.2.1", 20880, 1, "dubbo.metadata.storage-type", "remote", "dubbo.metadata.revision", rev)
	}
	for _, r := range []string{"r1", "r2"} {
		h.appSrc.setMeta("pay", r, `{"app":"pay","revision":"`+r+`"}`)
	}
	h.appSrc.set("pay", remote("r1"))
	eventually(t, "r1 copied", func() bool { l, _ := cfgs.getIn(LedgerMetadataGroup, "pay"); return l == "r1" })
	// A native instance of the same revision.
	h.reg.put("pay", Instance{IP: "10.0.2.9", Port: 20880, Metadata: map[string]string{keyMetaRevision: "r1"}})
	h.appSrc.set("pay", remote("r2"))
	eventually(t, "r2 copied", func() bool { l, _ := cfgs.getIn(LedgerMetadataGroup, "pay"); return l == "r1,r2" })
	unusedSince := func(rev string) (int64, bool) {
		h.e.mu.Lock()
		defer h.e.mu.Unlock()
		st := h.e.services[AppKey("pay")]
		if st == nil {
			return 0, false
		}
		at, ok := st.metaUnused[rev]
		return at.UnixNano(), ok
	}
	eventually(t, "r1 unused", func() bool { _, ok := unusedSince("r1"); return ok })
	h.clock.Advance(h.e.cfg.MetadataGrace)
	after := h.clock.Now().UnixNano()
	eventually(t, "r1 kept for the native instance, its grace started over", func() bool {
		at, ok := unusedSince("r1")
		return ok && at == after
	})
	if _, ok := cfgs.getIn("r1", "pay"); !ok {
		t.Fatal("r1 removed while a native instance names it")
	}
	h.reg.mu.Lock()
	delete(h.reg.insts["pay"], "10.0.2.9:20880")
	h.reg.mu.Unlock()
	h.clock.Advance(h.e.cfg.MetadataGrace)
	eventually(t, "r1 removed", func() bool {
		_, ok := cfgs.getIn("r1", "pay")
		l, _ := cfgs.getIn(LedgerMetadataGroup, "pay")
		return !ok && l == "r2"
	})
	if _, ok := cfgs.getIn("r2", "pay"); !ok {
		t.Fatal("r2 removed while in use")
	}
}
