package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/ferrysync/ferry/registry-server/configsvc"
)

func applyCmd(t *testing.T, f *fsm, typ byte, body any) error {
	t.Helper()
	b, err := encode(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	r := f.Apply(&raft.Log{Type: raft.LogCommand, Data: b})
	if r == nil {
		return nil
	}
	return r.(error)
}

// TestFSMConfigs: put (md5, CAS, same-content no-op, bounded history),
// remove, the watcher told after each change, and a snapshot that carries
// the configs into a fresh FSM (whose watcher hears every key).
func TestFSMConfigs(t *testing.T) {
	f := newFSM(newFakeApplier(), nil)
	var heard []configsvc.Key
	w := func(k configsvc.Key) { heard = append(heard, k) }
	f.cfg.watch.Store(&w)
	k := configsvc.Key{Group: "G", DataID: "d"}
	put := func(content, cas string, check bool) error {
		return applyCmd(t, f, cmdPutConfig, putConfigCmd{Key: k, Content: content, Type: "text", LastModified: 1,
			CheckCAS: check, CasMD5: cas, HistoryMax: 2})
	}
	for _, c := range []string{"v1", "v2", "v3", "v4"} {
		if err := put(c, "", false); err != nil {
			t.Fatal(err)
		}
	}
	if err := put("v4", "", false); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 4 {
		t.Fatalf("heard %d changes, want 4 (same content is no change)", len(heard))
	}
	if err := put("v5", configsvc.MD5("v3"), true); !errors.Is(err, configsvc.ErrCASMismatch) {
		t.Fatalf("stale cas: %v", err)
	}
	if err := put("v5", configsvc.MD5("v4"), true); err != nil {
		t.Fatal(err)
	}
	it := f.cfg.items[k]
	if it.Content != "v5" || it.MD5 != configsvc.MD5("v5") || len(it.History) != 2 || it.History[0].Content != "v4" || it.History[1].Content != "v3" {
		t.Fatalf("item = %+v", it)
	}
	if err := applyCmd(t, f, cmdPutConfig, putConfigCmd{Key: configsvc.Key{DataID: "x"}, Content: "c"}); !errors.Is(err, configsvc.ErrInvalidParam) {
		t.Fatalf("invalid key: %v", err)
	}
	other := configsvc.Key{Tenant: "ns", Group: "G", DataID: "e"}
	if err := applyCmd(t, f, cmdPutConfig, putConfigCmd{Key: other, Content: "e"}); err != nil {
		t.Fatal(err)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(snap.(*fsmSnapshot).state); err != nil {
		t.Fatal(err)
	}
	if err := applyCmd(t, f, cmdRemoveConfig, removeConfigCmd{Key: k}); err != nil || f.cfg.items[k] != nil {
		t.Fatalf("remove: %v", err)
	}

	g := newFSM(newFakeApplier(), nil)
	var restored []configsvc.Key
	w2 := func(k configsvc.Key) { restored = append(restored, k) }
	g.cfg.watch.Store(&w2)
	if err := g.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(restored, compareConfigKeys)
	if !slices.Equal(restored, []configsvc.Key{k, other}) {
		t.Fatalf("restore told %v", restored)
	}
	if it := g.cfg.items[k]; it == nil || it.Content != "v5" || len(it.History) != 2 {
		t.Fatalf("restored item = %+v", it)
	}
}
