package syncer

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func inst(addr string, ts int64) Instance {
	return Instance{IP: addr, Port: 1, Weight: 1, Enabled: true, Healthy: true, Ephemeral: true,
		Metadata: map[string]string{"timestamp": fmt.Sprint(ts), MetaSource: "zk:c"}}
}

func des(addr, node string, ts int64) Desired {
	return Desired{Instance: inst(addr, ts), Node: node, Timestamp: ts}
}

func reg(addr, node string, ts int64) Registered {
	return Registered{Instance: inst(addr, ts), Node: node, Timestamp: ts}
}

func actions(p Plan) []string {
	var out []string
	for _, a := range p.Actions {
		out = append(out, a.Kind.String()+" "+a.Addr)
	}
	return out
}

func TestReconcile(t *testing.T) {
	hold := 30 * time.Second
	cases := []struct {
		name      string
		in        ReconcileInput
		want      []string // actions
		keep      []string // addresses kept
		stale     int
		downgrade bool
		holds     []string
		deferred  int
		conflicts int
	}{
		{
			name: "empty",
			in:   ReconcileInput{},
		},
		{
			name: "register new",
			in:   ReconcileInput{Desired: map[string]Desired{"a": des("a", "n1", 1)}, AllowRemovals: true},
			want: []string{"register a"}, keep: []string{"a"},
		},
		{
			name: "unchanged is a no-op",
			in: ReconcileInput{Desired: map[string]Desired{"a": des("a", "n1", 1)},
				Registered: map[string]Registered{"a": reg("a", "n1", 1)}, AllowRemovals: true},
			keep: []string{"a"},
		},
		{
			name: "metadata change updates",
			in: ReconcileInput{Desired: map[string]Desired{"a": des("a", "n2", 2)},
				Registered: map[string]Registered{"a": reg("a", "n1", 1)}, AllowRemovals: true},
			want: []string{"update a"}, keep: []string{"a"},
		},
		{
			name: "removal when the registered node is gone",
			in: ReconcileInput{Registered: map[string]Registered{"a": reg("a", "n1", 1)},
				Gone: map[string][]GoneNode{"a": {{"n1", 1}}}, AllowRemovals: true},
			want: []string{"deregister a"},
		},
		{
			name: "removal by filter or mode (no node gone)",
			in:   ReconcileInput{Registered: map[string]Registered{"a": reg("a", "n1", 1)}, AllowRemovals: true},
			want: []string{"deregister a"},
		},
		{
			name: "kill -9 race: old node deleted after the new one registered is stale",
			in: ReconcileInput{Desired: map[string]Desired{"a": des("a", "n2", 2)},
				Registered: map[string]Registered{"a": reg("a", "n2", 2)},
				Gone:       map[string][]GoneNode{"a": {{"n1", 1}}}, AllowRemovals: true},
			keep: []string{"a"}, stale: 1,
		},
		{
			name: "kill -9 race coalesced: new node seen together with the old one's deletion",
			in: ReconcileInput{Desired: map[string]Desired{"a": des("a", "n2", 2)},
				Registered: map[string]Registered{"a": reg("a", "n1", 1)},
				Gone:       map[string][]GoneNode{"a": {{"n1", 1}}}, AllowRemovals: true},
			want: []string{"update a"}, keep: []string{"a"},
		},
		{
			name: "takeover race: older node's deletion while a newer one (other worker's view) is registered is held",
			in: ReconcileInput{Now: t0, StaleHold: hold, Registered: map[string]Registered{"a": reg("a", "", 2)},
				Gone: map[string][]GoneNode{"a": {{"n1", 1}}}, AllowRemovals: true},
			keep: []string{"a"}, stale: 1, holds: []string{"a"},
		},
		{
			name: "held removal waits while the hold runs",
			in: ReconcileInput{Now: t0.Add(10 * time.Second), StaleHold: hold, Registered: map[string]Registered{"a": reg("a", "", 2)},
				Holds: map[string]time.Time{"a": t0.Add(hold)}, AllowRemovals: true},
			keep: []string{"a"}, holds: []string{"a"},
		},
		{
			name: "held removal applied after the hold: ZooKeeper wins",
			in: ReconcileInput{Now: t0.Add(hold), StaleHold: hold, Registered: map[string]Registered{"a": reg("a", "", 2)},
				Holds: map[string]time.Time{"a": t0.Add(hold)}, AllowRemovals: true},
			want: []string{"deregister a"},
		},
		{
			name: "downgrade to an older node than registered is held",
			in: ReconcileInput{Now: t0, StaleHold: hold, Desired: map[string]Desired{"a": des("a", "n1", 1)},
				Registered: map[string]Registered{"a": reg("a", "", 2)}, AllowRemovals: true},
			keep: []string{"a"}, stale: 1, downgrade: true, holds: []string{"a"},
		},
		{
			name: "downgrade after the newer node itself went away is applied",
			in: ReconcileInput{Now: t0, StaleHold: hold, Desired: map[string]Desired{"a": des("a", "n1", 1)},
				Registered: map[string]Registered{"a": reg("a", "n2", 2)},
				Gone:       map[string][]GoneNode{"a": {{"n2", 2}}}, AllowRemovals: true},
			want: []string{"update a"}, keep: []string{"a"},
		},
		{
			name: "downgrade applied once the hold ended",
			in: ReconcileInput{Now: t0.Add(hold), StaleHold: hold, Desired: map[string]Desired{"a": des("a", "n1", 1)},
				Registered: map[string]Registered{"a": reg("a", "", 2)}, Holds: map[string]time.Time{"a": t0.Add(hold)}, AllowRemovals: true},
			want: []string{"update a"}, keep: []string{"a"},
		},
		{
			name: "ZooKeeper disconnected: no removals, adds still go",
			in: ReconcileInput{Desired: map[string]Desired{"b": des("b", "n2", 1)},
				Registered: map[string]Registered{"a": reg("a", "n1", 1)},
				Gone:       map[string][]GoneNode{"a": {{"n1", 1}}}},
			want: []string{"register b"}, keep: []string{"a", "b"}, deferred: 1,
		},
		{
			name: "foreign instance at a desired address is never touched",
			in: ReconcileInput{Desired: map[string]Desired{"a": des("a", "n1", 1)},
				Foreign: map[string]bool{"a": true}, AllowRemovals: true},
			conflicts: 1,
		},
		{
			name: "our registration replaced by a native one: dropped, not deregistered",
			in: ReconcileInput{Registered: map[string]Registered{"a": reg("a", "n1", 1)},
				Foreign: map[string]bool{"a": true}, AllowRemovals: true},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Reconcile(c.in)
			if got := actions(p); !slices.Equal(got, c.want) {
				t.Fatalf("actions = %v, want %v", got, c.want)
			}
			var keep []string
			for a := range p.Keep {
				keep = append(keep, a)
			}
			slices.Sort(keep)
			if !slices.Equal(keep, c.keep) {
				t.Fatalf("keep = %v, want %v", keep, c.keep)
			}
			if len(p.Stale) != c.stale {
				t.Fatalf("stale = %+v, want %d", p.Stale, c.stale)
			}
			if c.stale > 0 && p.Stale[0].Downgrade != c.downgrade {
				t.Fatalf("stale downgrade = %v", p.Stale[0].Downgrade)
			}
			var holds []string
			for a := range p.Holds {
				holds = append(holds, a)
			}
			slices.Sort(holds)
			if !slices.Equal(holds, c.holds) {
				t.Fatalf("holds = %v, want %v", holds, c.holds)
			}
			if len(p.Deferred) != c.deferred || len(p.Conflicts) != c.conflicts {
				t.Fatalf("deferred = %v conflicts = %v", p.Deferred, p.Conflicts)
			}
			// Level based: applying the plan and reconciling again is a no-op
			// (holds and foreign addresses aside).
			if len(c.in.Foreign) == 0 && len(p.Holds) == 0 && c.in.AllowRemovals {
				again := Reconcile(ReconcileInput{Now: c.in.Now, Desired: c.in.Desired, Registered: p.Keep, AllowRemovals: true, StaleHold: hold})
				if len(again.Actions) != 0 {
					t.Fatalf("second round not idempotent: %v", actions(again))
				}
			}
		})
	}
}

func TestPlanWithoutRemovals(t *testing.T) {
	regd := map[string]Registered{"a": reg("a", "n1", 1), "b": reg("b", "n2", 1)}
	p := Reconcile(ReconcileInput{Desired: map[string]Desired{"c": des("c", "n3", 1)}, Registered: regd, AllowRemovals: true})
	if p.Removals() != 2 {
		t.Fatalf("removals = %d", p.Removals())
	}
	h := p.WithoutRemovals(regd, nil)
	if h.Removals() != 0 || len(h.Keep) != 3 || len(h.Actions) != 1 || len(p.Keep) != 1 {
		t.Fatalf("held plan: %v keep %d (orig keep %d)", actions(h), len(h.Keep), len(p.Keep))
	}
}

func TestMassGuard(t *testing.T) {
	cases := []struct {
		total, recent, batch, min int
		want                      bool
	}{
		{100, 0, 0, 10, false},
		{100, 0, 50, 10, false},   // exactly half is not more than half
		{100, 0, 51, 10, true},    // more than half
		{4, 0, 3, 10, false},      // small task: under the minimum
		{60, 40, 11, 10, true},    // window: 51 of 100
		{100, 0, 100, 10, true},   // everything
		{1000, 0, 100, 10, false}, // a normal redeploy
	}
	for _, c := range cases {
		if got := MassGuard(c.total, c.recent, c.batch, 0.5, c.min); got != c.want {
			t.Errorf("MassGuard(%d,%d,%d,min %d) = %v, want %v", c.total, c.recent, c.batch, c.min, got, c.want)
		}
	}
}

func TestMetaTimestamp(t *testing.T) {
	for in, want := range map[string]int64{"1608630211892": 1608630211892, "1795353227": 1795353227000, "": 0, "x": 0, "-5": 0} {
		if got := metaTimestamp(in); got != want {
			t.Errorf("metaTimestamp(%q) = %d, want %d", in, got, want)
		}
	}
}
