package distro

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// TestSnapshotLoadPagesThroughEveryClient: a member pages through a
// peer's snapshot in chunks (here 7 clients a chunk over 100) and ends
// with every client, owned by the peer, those that hash to it adopted.
func TestSnapshotLoadPagesThroughEveryClient(t *testing.T) {
	members := []string{"10.0.0.1:8848", "10.0.0.2:8848"}
	newNode := func(self string) (*Runner, *naming.Registry) {
		reg := naming.NewRegistry(naming.DefaultConfig(), time.Now)
		r, err := NewRunner(DefaultConfig(), self, members, reg, func(context.Context, string, Message) error { return nil }, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r, reg
	}
	peer, peerReg := newNode(members[0])
	me, myReg := newNode(members[1])
	key := naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "snap"}
	for i := range 100 {
		if err := peerReg.RegisterBeatKept(key, naming.Instance{IP: "10.1.0.1", Port: 1000 + i, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}); err != nil {
			t.Fatal(err)
		}
	}
	chunks := 0
	fetch := func(_ context.Context, p, after string) (SnapshotChunk, error) {
		if p != members[0] {
			return SnapshotChunk{}, fmt.Errorf("asked %s", p)
		}
		chunks++
		return peer.Snapshot(after, 7), nil
	}
	n, from, err := me.Load(context.Background(), members, fetch)
	if err != nil || from != members[0] || n != 100 {
		t.Fatalf("Load = %d from %q, %v; want 100 from %s", n, from, err, members[0])
	}
	if chunks != 15 {
		t.Fatalf("%d chunks for 100 clients at 7 a chunk, want 15", chunks)
	}
	if got := len(myReg.Instances(key)); got != 100 {
		t.Fatalf("loaded %d instances, want 100", got)
	}
	adopted := 0
	for _, r := range myReg.ClientRevisions() {
		if r.Owner == "" {
			adopted++
			if Responsible(beatTag(r.ID), members) != members[1] {
				t.Fatalf("adopted %s, which hashes to the peer", r.ID)
			}
		} else if r.Owner != members[0] {
			t.Fatalf("client %s owned by %q", r.ID, r.Owner)
		}
	}
	if adopted == 0 || adopted == 100 {
		t.Fatalf("%d of 100 adopted: want the ones hashing here", adopted)
	}
	// No peer answers: a clear error naming them.
	if _, _, err := me.Load(context.Background(), members, func(context.Context, string, string) (SnapshotChunk, error) {
		return SnapshotChunk{}, fmt.Errorf("refused")
	}); err == nil {
		t.Fatal("Load without an answering peer succeeded")
	}
}
