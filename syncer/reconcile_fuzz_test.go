package syncer

import (
	"fmt"
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
