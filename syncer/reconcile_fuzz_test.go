package syncer

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// FuzzReconcile checks Reconcile's invariants on arbitrary inputs built from
// the fuzz bytes (4 bytes per fact: kind, address, node, timestamp).
func FuzzReconcile(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1}, true, uint8(0))
	f.Add([]byte{1, 2, 2, 3, 2, 2, 1, 1, 4, 2, 0, 0, 3, 3, 0, 0}, false, uint8(10))
	f.Add([]byte{0, 1, 1, 1, 1, 1, 0, 3, 2, 1, 1, 1, 5, 1, 0, 0}, true, uint8(40))
	f.Fuzz(func(t *testing.T, data []byte, allow bool, elapsed uint8) {
		hold := 30 * time.Second
		in := ReconcileInput{Now: t0.Add(time.Duration(elapsed) * time.Second), StaleHold: hold, AllowRemovals: allow,
			Desired: map[string]Desired{}, Registered: map[string]Registered{}, Gone: map[string][]GoneNode{},
			Foreign: map[string]bool{}, Holds: map[string]time.Time{}}
		for i := 0; i+3 < len(data); i += 4 {
			addr := fmt.Sprintf("a%d", data[i+1]%6)
			node := fmt.Sprintf("n%d", data[i+2]%4)
			ts := int64(data[i+3] % 4)
			switch data[i] % 6 {
			case 0:
				in.Desired[addr] = des(addr, node, ts)
			case 1:
				in.Registered[addr] = reg(addr, node, ts)
			case 2:
				in.Registered[addr] = reg(addr, "", ts) // adopted
			case 3:
				in.Gone[addr] = append(in.Gone[addr], GoneNode{Node: node, Timestamp: ts})
			case 4:
				in.Foreign[addr] = true
			case 5:
				in.Holds[addr] = t0.Add(hold)
			}
		}
		p := Reconcile(in)
		for a := range p.Keep {
			_, d := in.Desired[a]
			_, r := in.Registered[a]
			if in.Foreign[a] || (!d && !r) {
				t.Fatalf("keep %s: foreign=%v desired=%v registered=%v", a, in.Foreign[a], d, r)
			}
		}
		for a := range in.Desired {
			if _, ok := p.Keep[a]; !ok && !in.Foreign[a] {
				t.Fatalf("desired %s not kept", a)
			}
		}
		for a := range in.Registered {
			if _, ok := p.Keep[a]; !ok && !in.Foreign[a] && !allow {
				t.Fatalf("registered %s dropped with removals not allowed", a)
			}
		}
		for _, act := range p.Actions {
			_, d := in.Desired[act.Addr]
			_, r := in.Registered[act.Addr]
			switch {
			case in.Foreign[act.Addr]:
				t.Fatalf("action on foreign %s", act.Addr)
			case act.Kind == ActRegister && (!d || r):
				t.Fatalf("register %s: desired=%v registered=%v", act.Addr, d, r)
			case act.Kind == ActUpdate && (!d || !r):
				t.Fatalf("update %s: desired=%v registered=%v", act.Addr, d, r)
			case act.Kind == ActDeregister && (d || !r || !allow):
				t.Fatalf("deregister %s: desired=%v registered=%v allow=%v", act.Addr, d, r, allow)
			}
			if act.Kind == ActDeregister {
				if _, ok := p.Keep[act.Addr]; ok {
					t.Fatalf("deregistered %s still kept", act.Addr)
				}
			}
		}
		for a, until := range p.Holds {
			if !in.Now.Before(until) {
				t.Fatalf("expired hold %s kept", a)
			}
		}
		if len(p.Holds) == 0 && allow {
			again := Reconcile(ReconcileInput{Now: in.Now, Desired: in.Desired, Registered: p.Keep, Foreign: in.Foreign,
				AllowRemovals: true, StaleHold: hold})
			if len(again.Actions) != 0 {
				t.Fatalf("not idempotent: %v", actions(again))
			}
		}
	})
}

// FuzzPlanDesired checks PlanDesired's invariants on arbitrary snapshots
// built from the fuzz bytes (5 bytes per fact: kind, name, address, node,
// timestamp; the app of a candidate is its name's, with a mode from modes).
func FuzzPlanDesired(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 1, 0, 1, 1, 2, 2, 1, 1, 1, 3, 0, 2, 0, 0, 3, 1}, uint8(0))
	f.Add([]byte{0, 0, 0, 0, 1, 5, 0, 0, 0, 0, 1, 2, 2, 1, 0, 3, 2, 0, 0, 0, 4, 3, 0, 0, 0}, uint8(0x12))
	f.Add([]byte{6, 1, 1, 1, 1, 0, 2, 1, 1, 2, 7, 2, 0, 0, 0}, uint8(0x21))
	f.Fuzz(func(t *testing.T, data []byte, modes uint8) {
		in := PlanInput{Prev: map[string]nodeRec{}, Evicted: map[string]bool{},
			Active: map[string]bool{}, Known: map[string]bool{}, Unsettled: map[string]bool{}}
		appMode := func(app string) AppMode {
			switch (modes >> (2 * (app[len(app)-1] - '0'))) & 3 {
			case 1:
				return ModeNative
			case 2:
				return ModeExcluded
			}
			return ModeSync
		}
		in.Mode = appMode
		for i := 0; i+4 < len(data); i += 5 {
			name := fmt.Sprintf("s%d", data[i+1]%3)
			addr := fmt.Sprintf("a%d", data[i+2]%3)
			node := fmt.Sprintf("n%d", data[i+3]%6)
			ts := int64(data[i+4] % 4)
			switch data[i] % 8 {
			case 0, 6:
				skip := SkipNone
				if data[i] == 6 {
					skip = SkipWithNacos
				}
				in.Candidates = append(in.Candidates, Candidate{Node: node, Name: name, Addr: addr, Timestamp: ts,
					App: "app" + name[1:], Skip: skip, Instance: Instance{IP: addr, Port: 1}})
			case 1:
				in.Prev[node] = nodeRec{name: name, addr: addr, ts: ts}
			case 2:
				in.Evicted[node] = true
			case 3:
				in.Active[name] = true
			case 4:
				in.Unsettled[name] = true
			case 5, 7:
				in.Known[name] = true
			}
		}
		// A node has one place: keep the first candidate of each node.
		seen := map[string]bool{}
		cands := in.Candidates[:0:0]
		for _, c := range in.Candidates {
			if !seen[c.Node] {
				seen[c.Node] = true
				cands = append(cands, c)
			}
		}
		in.Candidates = cands

		ds := PlanDesired(in)
		type key struct{ name, addr string }
		best := map[key]int64{}
		for _, c := range in.Candidates {
			if !ds.Present[c.Node] {
				t.Fatalf("candidate %s not present", c.Node)
			}
			_, counted := ds.Nodes[c.Node]
			if counted == in.Evicted[c.Node] {
				t.Fatalf("node %s: counted=%v evicted=%v", c.Node, counted, in.Evicted[c.Node])
			}
			if counted {
				k := key{c.Name, c.Addr}
				if ts, ok := best[k]; !ok || c.Timestamp > ts {
					best[k] = c.Timestamp
				}
			}
		}
		total := 0
		for name, byAddr := range ds.Desired {
			for addr, d := range byAddr {
				total++
				ts, ok := best[key{name, addr}]
				if !ok || d.Timestamp != ts {
					t.Fatalf("desired %s %s: timestamp %d, newest %d (%v)", name, addr, d.Timestamp, ts, ok)
				}
				rec, ok := ds.Nodes[d.Node]
				if !ok || rec.name != name || rec.addr != addr {
					t.Fatalf("desired %s %s from node %s not in the snapshot", name, addr, d.Node)
				}
			}
		}
		for r, n := range ds.Skipped {
			if r == SkipNone || n < 0 {
				t.Fatalf("skipped %q: %d", r, n)
			}
			total += n
		}
		if total != len(best) {
			t.Fatalf("desired+skipped = %d, addresses = %d", total, len(best))
		}
		gone := 0
		for name, byAddr := range ds.Gone {
			for addr, nodes := range byAddr {
				for _, g := range nodes {
					gone++
					rec, ok := in.Prev[g.Node]
					if _, now := ds.Nodes[g.Node]; !ok || now || rec.name != name || rec.addr != addr || rec.ts != g.Timestamp {
						t.Fatalf("gone %s %s %+v: prev %+v (%v)", name, addr, g, rec, ok)
					}
				}
			}
		}
		for node := range in.Prev {
			if _, ok := ds.Nodes[node]; !ok {
				gone--
			}
		}
		if gone != 0 {
			t.Fatalf("gone nodes miscounted by %d", gone)
		}
		if !slices.IsSorted(ds.Names) || len(slices.Compact(slices.Clone(ds.Names))) != len(ds.Names) {
			t.Fatalf("names not sorted and unique: %v", ds.Names)
		}
		want := map[string]bool{}
		for k := range best {
			want[k.name] = true
		}
		for n := range in.Active {
			want[n] = true
		}
		for n := range in.Unsettled {
			want[n] = true
		}
		for n := range ds.Gone {
			if in.Known[n] {
				want[n] = true
			}
		}
		if len(want) != len(ds.Names) {
			t.Fatalf("names %v, want %v", ds.Names, want)
		}
		for _, n := range ds.Names {
			if !want[n] {
				t.Fatalf("name %s not wanted (%v)", n, want)
			}
		}
		if again := PlanDesired(in); !reflect.DeepEqual(again, ds) {
			t.Fatalf("not deterministic")
		}
	})
}
