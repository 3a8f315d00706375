package syncer

import (
	"slices"
	"time"
)

// Desired is the provider the sync wants registered at one address of one
// Nacos service (the newest node for that address, after the filters).
type Desired struct {
	Instance  Instance
	Node      string
	Timestamp int64 // provider timestamp, ms
}

// Registered is what this worker keeps registered (and beats) at one address.
type Registered struct {
	Instance  Instance
	Node      string // ZooKeeper node it was built from; "" when adopted from the registry
	Timestamp int64  // provider timestamp it was built from, ms
}

// GoneNode is a provider node that was at an address in the previous
// snapshot and is absent from the current one (including shadowed nodes).
type GoneNode struct {
	Node      string
	Timestamp int64
}

// ReconcileInput is everything Reconcile needs about one Nacos service.
// Maps are keyed by address ("ip:port") and are not modified.
type ReconcileInput struct {
	Now time.Time
	// Desired: the providers that should be registered.
	Desired map[string]Desired
	// Registered: what this worker keeps registered for the service (only
	// instances with our marker).
	Registered map[string]Registered
	// Gone: nodes that disappeared since the previous snapshot.
	Gone map[string][]GoneNode
	// Foreign: addresses the registry holds with an instance that lacks our
	// marker (a native registration). The sync never touches them.
	Foreign map[string]bool
	// Holds: stale holds from earlier rounds (address → hold end).
	Holds map[string]time.Time
	// AllowRemovals is false while the ZooKeeper view is not trustworthy
	// (session disconnected, initial listing incomplete): nothing is removed.
	AllowRemovals bool
	// StaleHold is how long a stale-looking removal or downgrade is held
	// before the level truth (ZooKeeper) wins anyway.
	StaleHold time.Duration
}

// ActionKind is what to do at one address.
type ActionKind int

// Action kinds.
const (
	ActRegister ActionKind = iota + 1
	ActUpdate
	ActDeregister
)

func (k ActionKind) String() string {
	switch k {
	case ActRegister:
		return "register"
	case ActUpdate:
		return "update"
	case ActDeregister:
		return "deregister"
	}
	return "unknown"
}

// Action is one change to the registry.
type Action struct {
	Kind     ActionKind
	Addr     string
	Instance Instance // the new instance (register, update) or the removed one
}

// Stale is a removal or downgrade the guard refused: its provider timestamp
// is older than the one registered for that address.
type Stale struct {
	Addr       string
	Node       string // the older node whose removal (or presence) was stale
	Timestamp  int64  // its timestamp
	Registered int64  // the timestamp of the instance kept registered
	Downgrade  bool   // the older node is still present: we refused to downgrade to it
}

// Plan is Reconcile's result for one service.
type Plan struct {
	// Keep is the complete set to keep registered and beaten afterwards.
	Keep map[string]Registered
	// Actions are the changes from Registered to Keep, sorted by address.
	Actions []Action
	// Stale lists removals and downgrades dropped by the stale guard.
	Stale []Stale
	// Holds are the stale holds still running (address → end).
	Holds map[string]time.Time
	// Deferred are removals postponed because removals were not allowed.
	Deferred []string
	// Conflicts are desired addresses held by a foreign instance.
	Conflicts []string
}

// Removals counts the plan's deregistrations.
func (p Plan) Removals() int {
	n := 0
	for _, a := range p.Actions {
		if a.Kind == ActDeregister {
			n++
		}
	}
	return n
}

// WithoutRemovals returns the plan with its deregistrations withheld (those
// held selects; nil: all of them): the removed instances stay in Keep
// (used by the mass-removal guard).
func (p Plan) WithoutRemovals(registered map[string]Registered, held func(addr string) bool) Plan {
	out := p
	out.Keep = make(map[string]Registered, len(p.Keep))
	for a, r := range p.Keep {
		out.Keep[a] = r
	}
	out.Actions = nil
	for _, act := range p.Actions {
		if act.Kind == ActDeregister && (held == nil || held(act.Addr)) {
			out.Keep[act.Addr] = registered[act.Addr]
			continue
		}
		out.Actions = append(out.Actions, act)
	}
	return out
}

// Reconcile compares the desired providers of one service with what this
// worker has registered and returns the actions that make them equal, level
// based (the same input always gives the same plan), with these guards:
//
//   - a node that disappeared while a newer node for its address is
//     registered is a stale removal (the kill -9 / restart race: ZooKeeper
//     deletes the old ephemeral node after the new one appeared): dropped
//     and reported;
//   - a removal or a downgrade to an older timestamp when the registered
//     instance is newer than anything our view has shown (it came from
//     another worker's newer view) is held for StaleHold and reported; after
//     the hold ZooKeeper's level truth wins;
//   - an address held by a foreign instance (no marker) is never touched;
//   - with AllowRemovals false nothing is removed.
func Reconcile(in ReconcileInput) Plan {
	p := Plan{Keep: make(map[string]Registered, len(in.Desired)), Holds: map[string]time.Time{}}
	addrs := make([]string, 0, len(in.Desired)+len(in.Registered))
	for a := range in.Desired {
		addrs = append(addrs, a)
	}
	for a := range in.Registered {
		if _, ok := in.Desired[a]; !ok {
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)

	// hold returns whether a held action must still wait, recording the hold.
	hold := func(a string) bool {
		until, ok := in.Holds[a]
		if !ok {
			until = in.Now.Add(in.StaleHold)
		}
		if in.Now.Before(until) {
			p.Holds[a] = until
			return true
		}
		return false
	}

	for _, a := range addrs {
		d, inD := in.Desired[a]
		r, inR := in.Registered[a]
		gone := in.Gone[a]
		if in.Foreign[a] {
			// Not ours: a native registration owns the address. Drop it from
			// our set without deregistering (that would remove theirs).
			if inD {
				p.Conflicts = append(p.Conflicts, a)
			}
			continue
		}
		switch {
		case inD && !inR:
			p.Keep[a] = Registered{Instance: d.Instance, Node: d.Node, Timestamp: d.Timestamp}
			p.Actions = append(p.Actions, Action{Kind: ActRegister, Addr: a, Instance: d.Instance})

		case inD && inR:
			for _, g := range gone {
				if g.Node != r.Node && g.Timestamp < r.Timestamp {
					p.Stale = append(p.Stale, Stale{Addr: a, Node: g.Node, Timestamp: g.Timestamp, Registered: r.Timestamp})
				}
			}
			if d.Timestamp < r.Timestamp && d.Node != r.Node && !newerGone(gone, r) && hold(a) {
				p.Keep[a] = r
				p.Stale = append(p.Stale, Stale{Addr: a, Node: d.Node, Timestamp: d.Timestamp, Registered: r.Timestamp, Downgrade: true})
				continue
			}
			inst := d.Instance
			if !sameInstance(d.Instance, r.Instance) {
				p.Actions = append(p.Actions, Action{Kind: ActUpdate, Addr: a, Instance: d.Instance})
			} else if r.Node != "" && r.Node == d.Node {
				// Unchanged since we built it: keep the registered copy, the
				// one the registry client beats. A fresh equal copy here
				// would be a second metadata map per instance whenever no
				// Keep follows (the old node's removal after a restart).
				inst = r.Instance
			}
			p.Keep[a] = Registered{Instance: inst, Node: d.Node, Timestamp: d.Timestamp}

		case !inD && inR:
			switch {
			case !in.AllowRemovals:
				p.Keep[a] = r
				p.Deferred = append(p.Deferred, a)
				if until, ok := in.Holds[a]; ok && in.Now.Before(until) {
					p.Holds[a] = until
				}
				continue
			case newerGone(gone, r):
				// The registered node itself (or a newer one) is gone.
			case len(gone) > 0:
				// Only older nodes are gone: the registered instance came from
				// a newer node this view never saw.
				if hold(a) {
					p.Keep[a] = r
					for _, g := range gone {
						p.Stale = append(p.Stale, Stale{Addr: a, Node: g.Node, Timestamp: g.Timestamp, Registered: r.Timestamp})
					}
					continue
				}
			default:
				// No node went away in this round: a removal by filter or mode
				// change, an orphan adopted from the registry, or a held
				// removal whose hold may have ended.
				if _, held := in.Holds[a]; held && hold(a) {
					p.Keep[a] = r
					continue
				}
			}
			p.Actions = append(p.Actions, Action{Kind: ActDeregister, Addr: a, Instance: r.Instance})
		}
	}
	return p
}

// newerGone reports whether the node r was built from, or one at least as
// new, is among the gone nodes.
func newerGone(gone []GoneNode, r Registered) bool {
	for _, g := range gone {
		if (r.Node != "" && g.Node == r.Node) || g.Timestamp >= r.Timestamp {
			return true
		}
	}
	return false
}

// MassGuard decides whether a batch of removals is a mass removal: more than
// Share of the task's instances removed within the guard's window, and at
// least Min of them. total is the task's registered instance count now;
// recent the removals already applied in the current window; batch the
// removals about to be applied.
func MassGuard(total, recent, batch int, share float64, min int) bool {
	if batch == 0 {
		return false
	}
	n := recent + batch
	if n < min {
		return false
	}
	return float64(n) > share*float64(total+recent)
}
