package syncer

import (
	"testing"
)

// A store outage: the leases lapse into Kept. The engine keeps beating what
// it registered (light beats only), applies nothing meanwhile (no
// registration, no deregistration), and once the store answers it
// reconciles the confirmed shards (applying the ZooKeeper changes it
// missed) and releases the shard that moved at once.
func TestEngineStoreOutageKeepsBeatingAppliesNothing(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1), prov("org.Foo", "10.0.0.2", 1, 1))
	h.src.set("s1.Bar", prov("s1.Bar", "10.0.0.3", 1, 1))
	h.src.set("org.Gone", prov("org.Gone", "10.0.0.6", 1, 1))
	eventually(t, "registered", func() bool { return h.reg.beatCount() == 4 })
	h.idle()
	keeps := h.reg.keepCount()

	h.own.outage()
	eventually(t, "light beats only", func() bool {
		return h.reg.isLight(fooName) && h.reg.isLight("providers:s1.Bar::")
	})
	if n := h.reg.beatCount(); n != 4 {
		t.Fatalf("beating %d instances during the outage, want 4", n)
	}
	if st := h.e.Status(); st.KeptShards != 2 || st.OwnedShards != 0 {
		t.Fatalf("status during the outage: %+v", st)
	}
	// ZooKeeper changes meanwhile: a removal and an addition. Nothing is
	// applied until the leases are confirmed.
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1), prov("org.Foo", "10.0.0.4", 1, 1))
	h.src.set("s1.Bar")
	h.src.remove("org.Gone") // the whole service leaves ZooKeeper
	h.idle()
	if len(h.reg.deregs) != 0 || h.reg.keepCount() != keeps || h.has(fooName, "10.0.0.4:1") || !h.has("providers:org.Gone::", "10.0.0.6:1") {
		t.Fatalf("applied during the outage: deregs %v, keeps %d (was %d)", h.reg.deregs, h.reg.keepCount(), keeps)
	}

	// The store answers: shard 0 confirmed (same epoch), shard 1 moved.
	h.own.recover(0)
	eventually(t, "missed changes applied to the confirmed shard", func() bool {
		return h.has(fooName, "10.0.0.4:1") && !h.has(fooName, "10.0.0.2:1") && !h.has("providers:org.Gone::", "10.0.0.6:1")
	})
	eventually(t, "moved shard released", func() bool { return !h.reg.beating1("providers:s1.Bar::", "10.0.0.3:1") })
	if h.reg.isLight(fooName) {
		t.Fatal("confirmed service still light-only")
	}
	if !h.has("providers:s1.Bar::", "10.0.0.3:1") {
		t.Fatal("the moved shard's instance was deregistered: only its new owner may")
	}
	if st := h.e.Status(); st.KeptShards != 0 || st.OwnedShards != 1 {
		t.Fatalf("status after the outage: %+v", st)
	}
}
