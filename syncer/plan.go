package syncer

import (
	"slices"
	"strings"
)

// Candidate is one ZooKeeper node that may become a registry instance: an
// interface-level provider node or an application-level instance node,
// already mapped by its kind (see providerCandidates) to the registry
// service it belongs to and the instance it would be.
type Candidate struct {
	Node      string // full znode path
	Name      string // registry service name
	Addr      string // "ip:port"
	Timestamp int64  // ms; decides which node of an address wins
	App       string // Dubbo application, for its mode ("" counts as ModeSync)
	// Skip is the kind's own filter verdict (bad address, include/exclude,
	// withNacos); the app mode is applied after it. Instance is only
	// needed when Skip is SkipNone.
	Skip     SkipReason
	Instance Instance
}

// PlanInput is everything PlanDesired needs about one engine work key (a
// ZooKeeper service, or an application). Maps are read, never modified.
type PlanInput struct {
	// Candidates are every node the snapshot holds (nil: the key is gone).
	Candidates []Candidate
	// Prev are the nodes of the last applied snapshot.
	Prev map[string]nodeRec
	// Evicted are nodes the probe sweeper found gone in ZooKeeper: ignored
	// even though the cached snapshot still lists them.
	Evicted map[string]bool
	// Mode gives an application's mode; nil means ModeSync for all.
	Mode func(app string) AppMode
	// Active are the registry names with instances registered or held
	// through this engine; Known every name the engine holds state for;
	// Unsettled the names whose last Keep failed.
	Active, Known, Unsettled map[string]bool
}

// DesiredSet is PlanDesired's result: what the key should look like in the
// registry, and what changed in ZooKeeper since the last applied snapshot.
type DesiredSet struct {
	// Nodes are the snapshot's nodes that count (not evicted), to be
	// remembered as Prev once applied.
	Nodes map[string]nodeRec
	// Present are every node of the snapshot, evicted ones included.
	Present map[string]bool
	// Desired per registry name and address: the newest node's instance,
	// after the filters.
	Desired map[string]map[string]Desired
	// Gone per registry name and address: the nodes of Prev absent now,
	// for the names the engine knows.
	Gone map[string]map[string][]GoneNode
	// Skipped counts the newest nodes not synced, per reason.
	Skipped map[SkipReason]int
	// Names are the registry names to reconcile, sorted: every name the
	// snapshot shows (synced or skipped: a skipped node's instance may have
	// been registered before and must be removed once), every active or
	// unsettled one, and every known one that lost nodes.
	Names []string
}

// PlanDesired turns a snapshot into the desired set: the newest node per
// (name, address) (ties: the greater node name), then the filters and the
// app mode on that newest node. It is a pure function of its input, and
// deterministic: equal inputs give equal sets, Gone lists sorted by node.
func PlanDesired(in PlanInput) DesiredSet {
	out := DesiredSet{Nodes: map[string]nodeRec{}, Present: map[string]bool{},
		Desired: map[string]map[string]Desired{}, Gone: map[string]map[string][]GoneNode{},
		Skipped: map[SkipReason]int{}}
	newest := map[string]map[string]Candidate{}
	for _, c := range in.Candidates {
		out.Present[c.Node] = true
		if in.Evicted[c.Node] {
			continue // ZooKeeper said it is gone; the cache lags
		}
		out.Nodes[c.Node] = nodeRec{name: c.Name, addr: c.Addr, ts: c.Timestamp}
		byAddr := newest[c.Name]
		if byAddr == nil {
			byAddr = map[string]Candidate{}
			newest[c.Name] = byAddr
		}
		// Ties go to the greater node name, as zkwatch picks its newest.
		if cur, ok := byAddr[c.Addr]; !ok || c.Timestamp > cur.Timestamp ||
			(c.Timestamp == cur.Timestamp && c.Node > cur.Node) {
			byAddr[c.Addr] = c
		}
	}
	for name, byAddr := range newest {
		for addr, c := range byAddr {
			if r := candidateSkip(c, in.Mode); r != SkipNone {
				out.Skipped[r]++
				continue
			}
			if out.Desired[name] == nil {
				out.Desired[name] = map[string]Desired{}
			}
			out.Desired[name][addr] = Desired{Instance: c.Instance, Node: c.Node, Timestamp: c.Timestamp}
		}
	}
	for node, rec := range in.Prev {
		if _, ok := out.Nodes[node]; ok {
			continue
		}
		if out.Gone[rec.name] == nil {
			out.Gone[rec.name] = map[string][]GoneNode{}
		}
		out.Gone[rec.name][rec.addr] = append(out.Gone[rec.name][rec.addr], GoneNode{Node: node, Timestamp: rec.ts})
	}
	for _, byAddr := range out.Gone {
		for _, g := range byAddr {
			slices.SortFunc(g, func(a, b GoneNode) int { return strings.Compare(a.Node, b.Node) })
		}
	}
	names := map[string]bool{}
	for n := range newest {
		names[n] = true
	}
	for n := range in.Active {
		names[n] = true
	}
	for n := range out.Gone {
		if in.Known[n] {
			names[n] = true
		}
	}
	for n := range in.Unsettled {
		names[n] = true // a failed Keep's set is set right (or emptied) by a Keep
	}
	out.Names = make([]string, 0, len(names))
	for n := range names {
		out.Names = append(out.Names, n)
	}
	slices.Sort(out.Names)
	return out
}

// candidateSkip applies the kind's verdict, then the app mode.
func candidateSkip(c Candidate, mode func(string) AppMode) SkipReason {
	if c.Skip != SkipNone {
		return c.Skip
	}
	if mode == nil || c.App == "" {
		return SkipNone
	}
	switch mode(c.App) {
	case ModeNative:
		return SkipAppNative
	case ModeExcluded:
		return SkipAppExcluded
	}
	return SkipNone
}

// providerCandidates maps the nodes of an interface-level snapshot (newest
// and shadowed) to candidates. Filter.Skip's app-mode part is left to
// PlanDesired.
func providerCandidates(snap ServiceSnapshot, f Filter, m Marker) []Candidate {
	out := make([]Candidate, 0, len(snap.Providers)+len(snap.Shadowed))
	add := func(p Provider) {
		c := Candidate{Node: p.Node, Name: ServiceName(p.URL), Addr: Addr(p.URL.Host, p.URL.Port),
			Timestamp: p.Timestamp, App: Application(p), Skip: f.Skip(p, ModeSync)}
		if c.Skip == SkipNone {
			c.Instance = BuildInstance(p, m)
		}
		out = append(out, c)
	}
	for _, p := range snap.Providers {
		add(p)
	}
	for _, p := range snap.Shadowed {
		add(p)
	}
	return out
}
