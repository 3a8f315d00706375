package naming

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

// clientLog records OnClientChange calls.
type clientLog struct {
	mu  sync.Mutex
	ids []string
}

func (l *clientLog) add(id string) { l.mu.Lock(); l.ids = append(l.ids, id); l.mu.Unlock() }
func (l *clientLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.ids
	l.ids = nil
	return out
}

func newClientRegistry(t *testing.T) (*Registry, *fakeClock, *clientLog) {
	t.Helper()
	r, clk, _ := newTestRegistry(t)
	log := &clientLog{}
	r.OnClientChange(log.add)
	return r, clk, log
}

func revisionOf(t *testing.T, r *Registry, id string) uint64 {
	t.Helper()
	cd, ok := r.Client(id)
	if !ok {
		t.Fatalf("no client %s", id)
	}
	return cd.Revision
}

// TestClientRevisionAndHook: every change of a local client's data bumps
// its revision and tells the client hook once; beats that only refresh a
// beat time, and re-sent identical registrations, do neither.
func TestClientRevisionAndHook(t *testing.T) {
	r, clk, log := newClientRegistry(t)
	must(t, r.Register("c1", demo, inst("10.0.0.1", 80)))
	if got := log.take(); !reflect.DeepEqual(got, []string{"c1"}) {
		t.Fatalf("hook after register = %v", got)
	}
	rev := revisionOf(t, r, "c1")
	must(t, r.Register("c1", demo, inst("10.0.0.1", 80))) // the SDK's redo
	if got := log.take(); len(got) != 0 || revisionOf(t, r, "c1") != rev {
		t.Fatalf("identical re-register: hook %v, revision %d → %d", got, rev, revisionOf(t, r, "c1"))
	}
	must(t, r.Register("c1", demo, inst("10.0.0.1", 81)))
	if revisionOf(t, r, "c1") <= rev || !reflect.DeepEqual(log.take(), []string{"c1"}) {
		t.Fatal("a changed registration must bump the revision and tell the hook")
	}

	b := BeatClientID("10.0.0.9", 90)
	must(t, r.RegisterBeatKept(demo, inst("10.0.0.9", 90)))
	if got := log.take(); !reflect.DeepEqual(got, []string{b}) {
		t.Fatalf("hook after beat-kept register = %v", got)
	}
	rev = revisionOf(t, r, b)
	clk.Add(time.Second)
	if res, err := r.Beat(demo, Instance{IP: "10.0.0.9", Port: 90}, false); err != nil || res.Status != BeatOK {
		t.Fatal(res, err)
	}
	if got := log.take(); len(got) != 0 || revisionOf(t, r, b) != rev {
		t.Fatalf("a light beat is not a change: hook %v", got)
	}
	r.Expire(clk.Add(16 * time.Second)) // unhealthy
	if got := log.take(); !reflect.DeepEqual(got, []string{b}) || revisionOf(t, r, b) != rev+1 {
		t.Fatalf("unhealthy: hook %v, revision %d", got, revisionOf(t, r, b))
	}
	r.BeatGroups([]BeatGroup{{Key: demo, Addrs: []Addr{{IP: "10.0.0.9", Port: 90}}}}) // healthy again
	if got := log.take(); !reflect.DeepEqual(got, []string{b}) || revisionOf(t, r, b) != rev+2 {
		t.Fatalf("revived: hook %v, revision %d", got, revisionOf(t, r, b))
	}
	r.Expire(clk.Add(31 * time.Second)) // removed
	if got := log.take(); !reflect.DeepEqual(got, []string{b}) {
		t.Fatalf("expired: hook %v", got)
	}
	if _, ok := r.Client(b); ok {
		t.Fatal("expired client still there")
	}
	r.DropClient("c1")
	if got := log.take(); !reflect.DeepEqual(got, []string{"c1"}) {
		t.Fatalf("drop: hook %v", got)
	}
}

// TestApplyClientRemote: a whole remote client is applied, replaced, left
// alone by expiry (its owner expires it), and removed with DropClient;
// per-service notification works for it as for local clients.
func TestApplyClientRemote(t *testing.T) {
	r, clk, changes := newTestRegistry(t)
	log := &clientLog{}
	r.OnClientChange(log.add)
	other := ServiceKey{Name: "other"}
	b := BeatClientID("10.0.1.1", 80)
	cd := ClientData{ID: b, Kind: BeatKeptClient, Owner: "10.1.0.2:8848", Revision: 7, Entries: []ClientEntry{
		{Key: demo, Instances: []Instance{inst("10.0.1.1", 80)}},
		{Key: other, Instances: []Instance{inst("10.0.1.1", 80)}},
	}}
	if ok, err := r.ApplyClient(cd); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if got := hostsOf(t, r, demo, true); len(got) != 1 || got[0].IP != "10.0.1.1" || got[0].Cluster != DefaultCluster {
		t.Fatalf("demo = %+v", got)
	}
	if got := log.take(); !reflect.DeepEqual(got, []string{b}) {
		t.Fatalf("hook = %v", got)
	}
	if len(*changes) != 2 {
		t.Fatalf("service changes = %v", *changes)
	}
	if ok, _ := r.ApplyClient(cd); ok {
		t.Fatal("the same owner and revision again must be a no-op")
	}
	// Never expired here: the owner does that (and sends the removal).
	r.Expire(clk.Add(time.Hour))
	if got := hostsOf(t, r, demo, true); len(got) != 1 {
		t.Fatalf("a remote client expired locally: %+v", got)
	}
	// A newer copy without the other service replaces the whole client.
	cd.Revision, cd.Entries = 8, cd.Entries[:1]
	if ok, err := r.ApplyClient(cd); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if got := hostsOf(t, r, other, false); len(got) != 0 {
		t.Fatalf("other after the replacement = %+v", got)
	}
	got, _ := r.Client(b)
	if got.Owner != "10.1.0.2:8848" || got.Revision != 8 || len(got.Entries) != 1 || got.Entries[0].Key != demoFull {
		t.Fatalf("client = %+v", got)
	}
	revs := r.ClientRevisions()
	if !reflect.DeepEqual(revs, []ClientRevision{{ID: b, Owner: "10.1.0.2:8848", Revision: 8}}) {
		t.Fatalf("revisions = %+v", revs)
	}
	r.DropClient(b)
	if got := hostsOf(t, r, demo, false); len(got) != 0 {
		t.Fatalf("after drop = %+v", got)
	}

	// A connection client of another member: one entry holding a batch.
	conn := ClientData{ID: "1700000000000_10.2.0.1_5000", Kind: ConnectionClient, Owner: "10.1.0.3:8848", Revision: 2,
		Entries: []ClientEntry{{Key: demo, Instances: []Instance{inst("10.2.0.1", 1), inst("10.2.0.2", 2)}}}}
	if ok, err := r.ApplyClient(conn); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if got := hostsOf(t, r, demo, true); len(got) != 2 {
		t.Fatalf("connection client's batch = %+v", got)
	}

	// The kind of a service is checked as for local registrations, and a
	// beat-kept client holds one instance per service.
	must(t, r.RegisterBeatKept(ServiceKey{Name: "p"}, inst("10.0.0.1", 1)))
	r.SetPersistent(ServiceKey{Name: "q"}, []Instance{{IP: "10.0.0.2", Port: 2, Weight: 1, Enabled: true}})
	bad := ClientData{ID: "x", Kind: ConnectionClient, Owner: "m", Revision: 1, Entries: []ClientEntry{{Key: ServiceKey{Name: "q"}, Instances: []Instance{inst("10.0.0.3", 3)}}}}
	if _, err := r.ApplyClient(bad); !errors.Is(err, ErrEphemeralMismatch) {
		t.Fatalf("ephemeral client into a persistent service: %v", err)
	}
	bad = ClientData{ID: BeatClientID("10.0.0.4", 4), Kind: BeatKeptClient, Owner: "m", Revision: 1,
		Entries: []ClientEntry{{Key: demo, Instances: []Instance{inst("10.0.0.4", 4), inst("10.0.0.4", 4)}}}}
	if _, err := r.ApplyClient(bad); !errors.Is(err, ErrInvalidParam) {
		t.Fatalf("two instances in a beat-kept entry: %v", err)
	}
}

// TestAdoptedClientExpiresNoSooner: a remote beat-kept client adopted by
// this node counts as beaten at adoption: unhealthy only after the beat
// timeout and removed only after the delete timeout from then; given
// away again, this node stops expiring it.
func TestAdoptedClientExpiresNoSooner(t *testing.T) {
	r, clk, log := newClientRegistry(t)
	b := BeatClientID("10.0.1.1", 80)
	cd := ClientData{ID: b, Kind: BeatKeptClient, Owner: "dead:8848", Revision: 3,
		Entries: []ClientEntry{{Key: demo, Instances: []Instance{inst("10.0.1.1", 80)}}}}
	if _, err := r.ApplyClient(cd); err != nil {
		t.Fatal(err)
	}
	log.take()
	adoptedAt := clk.Add(10 * time.Minute) // its owner died long ago, no beats since
	if !r.SetClientOwner(b, "") {
		t.Fatal("adopt")
	}
	if r.SetClientOwner(b, "") {
		t.Fatal("adopting twice must be a no-op")
	}
	if got := log.take(); !reflect.DeepEqual(got, []string{b}) || revisionOf(t, r, b) != 4 {
		t.Fatalf("adoption: hook %v, revision %d", got, revisionOf(t, r, b))
	}
	if since, _ := r.beatKeptSince(b, demo); !since.Equal(adoptedAt) {
		t.Fatalf("beat time %v, want the adoption %v", since, adoptedAt)
	}
	r.Expire(clk.Add(15 * time.Second)) // exactly the beat timeout: not yet
	if got := hostsOf(t, r, demo, true); len(got) != 1 {
		t.Fatalf("unhealthy too early: %+v", got)
	}
	r.Expire(clk.Add(time.Millisecond))
	if got := hostsOf(t, r, demo, true); len(got) != 0 {
		t.Fatalf("still healthy after the beat timeout: %+v", got)
	}
	r.Expire(adoptedAt.Add(30 * time.Second)) // exactly the delete timeout
	if got := hostsOf(t, r, demo, false); len(got) != 1 {
		t.Fatalf("removed too early: %+v", got)
	}
	// Handed over to another member: no longer expired here.
	if !r.SetClientOwner(b, "peer:8848") {
		t.Fatal("hand over")
	}
	r.Expire(adoptedAt.Add(time.Hour))
	if got := hostsOf(t, r, demo, false); len(got) != 1 {
		t.Fatalf("a handed-over client expired here: %+v", got)
	}
	if !r.SetClientOwner(b, "") {
		t.Fatal("adopt again")
	}
	r.Expire(clk.Add(31 * time.Second))
	if got := hostsOf(t, r, demo, false); len(got) != 0 {
		t.Fatalf("adopted client without beats not removed: %+v", got)
	}
}

// beatKeptSince reports the last beat of a beat-kept entry.
func (r *Registry) beatKeptSince(id string, k ServiceKey) (time.Time, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c := r.clients[id]; c != nil {
		if e := c.entries[r.lenientKey(k)]; e != nil {
			return e.lastBeat, true
		}
	}
	return time.Time{}, false
}
