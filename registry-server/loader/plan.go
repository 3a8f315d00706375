// Package loader spreads SDK connections over the registry cluster: Nacos'
// /nacos/v2/core/loader routes (current, reloadCurrent, reloadClient,
// cluster, smartReloadCluster), an automatic balancer that needs no manual
// call after a rolling restart, and the hand-over of a stopping node's
// clients to the other members.
//
// A connection is moved by a ConnectResetRequest that names the target
// member (its main port; the client adds the gRPC offset): the Go SDK
// ignores a reset without a target, and a client told only "reconnect"
// may land on the same node again.
//
// The decision is a pure function (Plan) of the members' connection counts;
// the Balancer around it does the I/O: it asks every serving member for
// its count over the cluster port, plans, and resets the chosen
// connections of this node only. Every overloaded member plans from the
// same counts and sheds only its own excess, capped per round, so the
// members converge without a coordinator.
package loader

import (
	"math"
	"sort"
)

// Move is part of a plan: send Count of this node's connections to Target.
type Move struct {
	Target string
	Count  int
}

// Plan returns where node self should send connections, given every
// serving member's connection count (self included). A member is
// overloaded when it holds more than the average by more than factor
// (0.1 = 10 %, Nacos' loader factor), or at least one more than the
// average while another member holds less than the average by more than
// factor (as Nacos' smart reload pairs its over- and under-limit lists);
// each overloaded member sends its
// excess over the average, at most maxMoves, to the members below the
// average, the least loaded first, each filled at most to the average.
// The plan is computed for the whole cluster (the most loaded member
// first, address order on ties) and self's part returned: every node
// computes the same plan from the same counts, so two overloaded nodes
// never both fill the same room.
func Plan(loads map[string]int, self string, factor float64, maxMoves int) []Move {
	if _, ok := loads[self]; !ok || len(loads) < 2 || maxMoves <= 0 {
		return nil
	}
	type member struct {
		addr string
		n    int
	}
	total := 0
	all := make([]member, 0, len(loads))
	for a, n := range loads {
		n = max(n, 0)
		total += n
		all = append(all, member{a, n})
	}
	avg := float64(total) / float64(len(all))
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].addr < all[j].addr
	})
	room := map[string]int{}
	cur := make(map[string]int, len(loads))
	for _, m := range all {
		cur[m.addr] = m.n
	}
	var under []string
	for i := len(all) - 1; i >= 0; i-- {
		if m := all[i]; float64(m.n) < avg {
			room[m.addr] = int(math.Ceil(avg - float64(m.n)))
			under = append(under, m.addr)
		}
	}
	sort.SliceStable(under, func(i, j int) bool { // least loaded first, address order on ties
		if ni, nj := loads[under[i]], loads[under[j]]; ni != nj {
			return ni < nj
		}
		return under[i] < under[j]
	})
	// Someone far below the average pulls from everyone above it (a node
	// just restarted), not only from the overloaded.
	starved := len(under) > 0 && float64(loads[under[0]]) < avg*(1-factor)
	for _, m := range all {
		if float64(m.n) <= avg*(1+factor) && !starved {
			break // sorted: nobody after is overloaded
		}
		// Down to the average; for a starved member down to its floor
		// (a connection short of a fractional average is still even).
		excess := int(math.Floor(float64(m.n) - avg))
		if starved {
			excess = m.n - int(math.Floor(avg))
		}
		if excess < 1 {
			break
		}
		excess = min(excess, maxMoves)
		var moves []Move
		for _, u := range under {
			k := 0
			// One at a time while it narrows the gap: a move between two
			// members one apart would only swap them.
			for excess > 0 && room[u] > 0 && cur[m.addr]-cur[u] >= 2 {
				cur[m.addr]--
				cur[u]++
				room[u]--
				excess--
				k++
			}
			if k > 0 {
				moves = append(moves, Move{Target: u, Count: k})
			}
		}
		if m.addr == self {
			return moves
		}
	}
	return nil
}

// Handoff spreads n connections of a stopping node over the other serving
// members (loads without the stopping node), so that their counts end as
// even as possible: each connection goes to the member with the fewest at
// that point (address order on ties).
func Handoff(loads map[string]int, n int) []Move {
	if n <= 0 || len(loads) == 0 {
		return nil
	}
	addrs := make([]string, 0, len(loads))
	cur := make(map[string]int, len(loads))
	for a, c := range loads {
		addrs = append(addrs, a)
		cur[a] = c
	}
	sort.Strings(addrs)
	got := map[string]int{}
	for range n {
		best := addrs[0]
		for _, a := range addrs[1:] {
			if cur[a] < cur[best] {
				best = a
			}
		}
		cur[best]++
		got[best]++
	}
	var out []Move
	for _, a := range addrs {
		if got[a] > 0 {
			out = append(out, Move{Target: a, Count: got[a]})
		}
	}
	return out
}
