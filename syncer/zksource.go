package syncer

import (
	"context"

	"github.com/ferrysync/ferry/zkwatch"
)

// ZKSource adapts a zkwatch.Watcher (one per ZooKeeper cluster) to Source.
// Its Changes channel has one reader: give each Engine its own watcher, or
// fan the channel out in the caller when several tasks share a cluster.
type ZKSource struct {
	W *zkwatch.Watcher
}

// Changes implements Source.
func (z ZKSource) Changes() <-chan string { return z.W.Changes() }

// Services implements Source.
func (z ZKSource) Services() []string { return z.W.Services() }

// Synced implements Source: the watcher's full listing since the session (re)began
// AND a connected session (the watcher keeps its last state while
// disconnected, which the engine must not read as removals).
func (z ZKSource) Synced() bool { return z.W.Synced() && z.W.Connected() }

// ProviderExists implements Source.
func (z ZKSource) ProviderExists(ctx context.Context, node string) (bool, error) {
	return z.W.ProviderExists(ctx, node)
}

// Snapshot implements Source.
func (z ZKSource) Snapshot(service string) (ServiceSnapshot, bool) {
	s, ok := z.W.Snapshot(service)
	if !ok {
		return ServiceSnapshot{}, false
	}
	out := ServiceSnapshot{Service: s.Service, Revision: s.Revision,
		Providers: make(map[string]Provider, len(s.Providers))}
	for a, p := range s.Providers {
		out.Providers[a] = fromZK(p)
	}
	if len(s.Shadowed) > 0 {
		out.Shadowed = make([]Provider, len(s.Shadowed))
		for i, p := range s.Shadowed {
			out.Shadowed[i] = fromZK(p)
		}
	}
	return out, true
}

func fromZK(p zkwatch.Provider) Provider {
	return Provider{Node: p.Node, URL: URL(p.URL), Timestamp: p.Timestamp, Disabled: p.Disabled}
}
