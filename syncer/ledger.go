package syncer

import (
	"context"
	"slices"
	"strings"
)

// Ferry's ledger of the configs it wrote (docs/dubbo3-app-level.md §5).
// A mapping config mixes apps Ferry copied from ZooKeeper with apps that
// registered natively, and nothing in ZooKeeper or in the config tells one
// from the other once the worker that wrote them is gone (ZooKeeper keeps no
// history: an app dropped from its node while no worker owned the key looks
// exactly like a native one). So next to each config it writes, Ferry keeps
// a ledger config in the same namespace, dataId the same, group
// LedgerMappingGroup (the apps it wrote into {interface}/mapping) or
// LedgerMetadataGroup (the revisions it copied as {app}/{revision}): a
// sorted, comma-joined list. Dubbo reads neither group. A new owner (a
// restart, a shard move) reads the ledger before its first write, so it
// removes what an earlier owner wrote and ZooKeeper no longer names, and
// never what it did not write; Retire removes exactly what the ledger
// names.
//
// Order, so that a crash between two writes never loses a claim: the
// ledger grows before the config is written (it may then name an app the
// config does not hold: harmless) and shrinks after.

const (
	// LedgerMappingGroup holds, per interface, the apps Ferry wrote into
	// its mapping config.
	LedgerMappingGroup = "ferry.mapping"
	// LedgerMetadataGroup holds, per application, the revisions whose
	// metadata Ferry copied.
	LedgerMetadataGroup = "ferry.metadata"
)

// readLedger reads a ledger: its items, sorted and unique.
func (e *Engine) readLedger(ctx context.Context, group, dataID string) ([]string, error) {
	content, found, err := e.deps.Configs.GetConfig(ctx, ConfigRef{Namespace: e.cfg.Namespace, Group: group, DataID: dataID})
	if err != nil || !found {
		return nil, err
	}
	items, _ := ParseMapping(content)
	return items, nil
}

// writeLedger replaces a ledger; no items removes it.
func (e *Engine) writeLedger(ctx context.Context, group, dataID string, items []string) error {
	ref := ConfigRef{Namespace: e.cfg.Namespace, Group: group, DataID: dataID}
	if len(items) == 0 {
		return e.deps.Configs.RemoveConfig(ctx, ref)
	}
	return e.deps.Configs.PublishConfig(ctx, ref, strings.Join(items, ","))
}

// union returns the sorted unique items of a and b.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// without returns the items of a that drop does not select.
func without(a []string, drop func(string) bool) []string {
	var out []string
	for _, x := range a {
		if !drop(x) {
			out = append(out, x)
		}
	}
	return out
}
