package distro

import (
	"testing"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// TestEngineSetMembers: a member added at run time is sent every client
// this node owns at once; a removed member gets nothing more, its
// beat-kept copies here are adopted by their responsible member, and a
// list without this node is refused.
func TestEngineSetMembers(t *testing.T) {
	a, b, c := "10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848"
	t0 := time.Unix(1_700_000_000, 0)
	reg := naming.NewRegistry(naming.DefaultConfig(), func() time.Time { return t0 })
	key := naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "m"}
	for i := range 20 {
		if err := reg.RegisterBeatKept(key, naming.Instance{IP: "10.1.0.1", Port: 1000 + i, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}); err != nil {
			t.Fatal(err)
		}
	}
	// A copy owned by b (synced from it earlier).
	if _, err := reg.ApplyClient(naming.ClientData{ID: "10.2.0.1:80#true", Kind: naming.BeatKeptClient, Owner: b, Revision: 1, Entries: []naming.ClientEntry{{Key: key,
		Instances: []naming.Instance{{IP: "10.2.0.1", Port: 80, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}}}}}); err != nil {
		t.Fatal(err)
	}
	e := mustNew(t, a, []string{a, b}, reg) // sees the clients above as its own
	e.Tick(t0)                              // the first verify round
	if _, err := e.SetMembers([]string{b, c}, []string{b, c}, t0); err == nil {
		t.Fatal("a list without this node was accepted")
	}
	ops, err := e.SetMembers([]string{a, c}, []string{a, c}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Members(); len(got) != 2 || got[0] != a || got[1] != c {
		t.Fatalf("members %v", got)
	}
	adopted := false
	for _, op := range ops {
		if op.Kind == OpOwn && op.ID == "10.2.0.1:80#true" {
			adopted = true
		}
	}
	if Responsible("10.2.0.1:80", []string{a, c}) == a && !adopted {
		t.Fatalf("the removed member's copy was not adopted: %+v", ops)
	}
	_, out := e.Tick(t0.Add(time.Millisecond))
	toC := 0
	for _, env := range out {
		if env.To == b {
			t.Fatalf("sent to the removed member: %+v", env)
		}
		if env.To == c && env.Msg.Kind == MsgSync {
			toC += len(env.Msg.Clients)
		}
	}
	if toC != 20 {
		t.Fatalf("the new member got %d of the 20 own clients in the first batch", toC)
	}
}

func mustNew(t *testing.T, self string, members []string, src Source) *Engine {
	t.Helper()
	e, err := New(DefaultConfig(), self, members, src)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
