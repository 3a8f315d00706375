package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Remote application metadata (docs/dubbo3-app-level.md §3): an instance
// whose dubbo.metadata.storage-type is "remote" makes consumers read the
// application's MetadataInfo for its revision from the metadata report,
// which on Nacos is the config dataId {app}, group {revision}
// (NacosMetadataReport.getAppMetadata). Per application all or nothing:
// the metadata of a revision is copied before any instance of that
// revision is registered; an instance whose revision's metadata cannot be
// copied (missing in ZooKeeper, above the config service's limit, a failed
// call) is held back: not registered, or left as it was registered. The
// revisions copied are named in the app's ledger (ledger.go) and removed
// MetadataGrace after no instance uses them (gcAppMetadata).

// Application-level metadata keys the sync reads
// (ServiceInstanceMetadataUtils).
const (
	keyMetaRevision    = "dubbo.metadata.revision"
	keyMetaStorageType = "dubbo.metadata.storage-type"
	storageRemote      = "remote"
)

// remoteRevision returns the revision whose metadata an instance's
// consumers read from the metadata report; "" when they ask the provider.
func remoteRevision(in Instance) string {
	if !strings.EqualFold(in.Metadata[keyMetaStorageType], storageRemote) {
		return ""
	}
	return in.Metadata[keyMetaRevision]
}

// ensureAppMetadata copies the remote metadata of every revision app's
// desired instances name into the config service, then holds back the
// instances whose revision could not be copied (edits ds). It reports
// whether something failed that a retry may mend.
func (e *Engine) ensureAppMetadata(ctx context.Context, app string, ks keySnapshot, ds *DesiredSet) bool {
	desired := ds.Desired[app]
	revs := map[string]bool{}
	for _, d := range desired {
		if r := remoteRevision(d.Instance); r != "" {
			revs[r] = true
		}
	}
	if len(revs) == 0 || !e.mappingsOn() {
		return false // nothing to copy, or no config service to copy to
	}
	e.mu.Lock()
	prevDone, prevBad, prevMissing := ks.st.metaDone, ks.st.metaBad, ks.st.metaMissing
	ledger, loaded := ks.st.metaLedger, ks.st.metaLoaded
	e.mu.Unlock()
	done, bad, missing := map[string]bool{}, map[string]bool{}, map[string]bool{}
	held := map[string]bool{}
	failed := false
	for rev := range revs {
		switch {
		case prevDone[rev]:
			done[rev] = true
			continue
		case prevBad[rev]:
			bad[rev], held[rev] = true, true
			continue
		}
		path := e.deps.AppSource.AppMetadataPath(app, rev)
		content, ok, err := e.deps.AppSource.AppMetadata(ctx, app, rev)
		switch {
		case err != nil:
			e.log.Warn("remote metadata unreadable; its instances wait", "app", app, "revision", rev, "err", err)
			held[rev], failed = true, true
			continue
		case !ok:
			if !prevMissing[rev] { // once per revision while it stays missing (it is retried)
				e.record(Event{Kind: EventMetadataMissing, Service: app,
					Detail: fmt.Sprintf("node %s (or dubbo-go's, without /metadata) does not exist (dubbo.metadata.storage-type=remote): the instances of revision %s wait for it", path, rev)})
			}
			missing[rev], held[rev], failed = true, true, true
			continue
		case len(content) > e.cfg.MaxConfigBytes:
			e.record(Event{Kind: EventMetadataMissing, Service: app,
				Detail: fmt.Sprintf("node %s: %d bytes, over the config service's %d: not copied; the instances of revision %s are not synced", path, len(content), e.cfg.MaxConfigBytes, rev)})
			bad[rev], held[rev] = true, true
			continue
		}
		ref := ConfigRef{Namespace: e.cfg.Namespace, Group: rev, DataID: app}
		cur, found, err := e.deps.Configs.GetConfig(ctx, ref)
		if err == nil && (!found || cur != content) {
			if !e.deps.Ownership.Owns(ks.shard, ks.epoch) {
				held[rev], failed = true, true
				continue
			}
			// The ledger names the revision before its config exists.
			if ledger, loaded, err = e.claimRevision(ctx, app, ledger, loaded, rev); err == nil {
				err = e.deps.Configs.PublishConfig(ctx, ref, content)
			}
		}
		if e.configsGone(err) {
			e.mu.Lock()
			ks.st.metaLedger, ks.st.metaLoaded = ledger, loaded
			e.mu.Unlock()
			return false // instances only, as they are
		}
		if err != nil {
			e.applyFailed(AppKey(app), ServiceRef{Namespace: ref.Namespace, Group: ref.Group, Name: ref.DataID}, "copy metadata", err)
			held[rev], failed = true, true
			continue
		}
		done[rev] = true
	}
	e.mu.Lock()
	ks.st.metaDone, ks.st.metaBad, ks.st.metaMissing = done, bad, missing // replaced, never mutated
	ks.st.metaLedger, ks.st.metaLoaded = ledger, loaded
	e.mu.Unlock()
	if len(held) == 0 {
		return failed
	}
	registered := ks.views[app].registered
	for addr, d := range desired {
		if !held[remoteRevision(d.Instance)] {
			continue
		}
		if r, ok := registered[addr]; ok {
			desired[addr] = Desired{Instance: r.Instance, Node: r.Node, Timestamp: r.Timestamp}
			continue
		}
		delete(desired, addr)
		ds.Skipped[SkipMetadata]++
	}
	return failed
}

// claimRevision adds rev to the app's metadata ledger (read first unless
// loaded) and returns the ledger as it now stands.
func (e *Engine) claimRevision(ctx context.Context, app string, ledger []string, loaded bool, rev string) ([]string, bool, error) {
	if !loaded {
		l, err := e.readLedger(ctx, LedgerMetadataGroup, app)
		if err != nil {
			return ledger, false, err
		}
		ledger, loaded = l, true
	}
	if slices.Contains(ledger, rev) {
		return ledger, loaded, nil
	}
	next := union(ledger, []string{rev})
	if err := e.writeLedger(ctx, LedgerMetadataGroup, app, next); err != nil {
		return ledger, loaded, err
	}
	return next, loaded, nil
}

// gcAppMetadata removes the metadata configs Ferry copied for app (its
// ledger) that no instance has used for MetadataGrace: a revision is in
// use while an instance desired now or registered after this apply names
// it. The grace lets a consumer that still holds an old instance list read
// an old revision; a revision that any instance in the registry still
// names (a natively registered one included) is kept. The ledger is read
// on the first call after ownership began, so a new owner collects what an
// earlier one copied. Revisions waiting for their grace keep the key in
// the engine's state (see commit) and a pass is scheduled for when the
// first is due.
func (e *Engine) gcAppMetadata(ctx context.Context, s, app string, ks keySnapshot, ds DesiredSet, works []*nameWork) {
	if !e.mappingsOn() || !ks.synced {
		return // nothing to remove while ZooKeeper's view is not trusted
	}
	used := map[string]bool{}
	for _, d := range ds.Desired[app] {
		used[d.Instance.Metadata[keyMetaRevision]] = true
	}
	for _, nw := range works { // what is registered now
		regs := nw.ns.registered
		if nw.applied {
			regs = nw.plan.Keep
		}
		for _, r := range regs {
			used[r.Instance.Metadata[keyMetaRevision]] = true
		}
	}
	e.mu.Lock()
	ledger, loaded, unused := ks.st.metaLedger, ks.st.metaLoaded, ks.st.metaUnused
	e.mu.Unlock()
	if !loaded {
		l, err := e.readLedger(ctx, LedgerMetadataGroup, app)
		if e.configsGone(err) {
			return
		}
		if err != nil {
			e.applyFailed(s, ServiceRef{Namespace: e.cfg.Namespace, Group: LedgerMetadataGroup, Name: app}, "read ledger", err)
			return // read again at the next pass
		}
		ledger, loaded = l, true
	}
	now := e.clock.Now()
	next := map[string]time.Time{}
	var due []string
	wait := time.Duration(-1)
	for _, rev := range ledger {
		if used[rev] {
			continue
		}
		since, ok := unused[rev]
		if !ok {
			since = now
		}
		if left := e.cfg.MetadataGrace - now.Sub(since); left > 0 {
			next[rev] = since
			if !ok && (wait < 0 || left < wait) {
				wait = left // newly unused: come back when due (the full reconcile covers the rest)
			}
			continue
		}
		due = append(due, rev)
	}
	var removed []string
	if len(due) > 0 {
		var err error
		removed, err = e.dropMetadata(ctx, app, ks.shard, ks.epoch, ledger, due)
		if e.configsGone(err) {
			return
		}
		if err != nil && !errors.Is(err, errFenced) {
			e.applyFailed(s, ServiceRef{Namespace: e.cfg.Namespace, Group: LedgerMetadataGroup, Name: app}, "remove metadata", err)
		}
		for _, rev := range due {
			switch {
			case err != nil: // due again at the retry
				next[rev] = unused[rev]
			case !slices.Contains(removed, rev): // still named in the registry: start over
				next[rev] = now
			}
		}
		if err != nil {
			wait = e.backoff(1)
		} else if len(removed) < len(due) && (wait < 0 || e.cfg.MetadataGrace < wait) {
			wait = e.cfg.MetadataGrace
		}
		ledger = without(ledger, func(r string) bool { return slices.Contains(removed, r) })
	}
	e.mu.Lock()
	if e.services[s] == ks.st {
		ks.st.metaLedger, ks.st.metaLoaded, ks.st.metaUnused = ledger, loaded, next
		if len(removed) > 0 {
			done := map[string]bool{}
			for r := range ks.st.metaDone {
				if !slices.Contains(removed, r) {
					done[r] = true
				}
			}
			ks.st.metaDone = done
		}
	}
	e.mu.Unlock()
	if wait >= 0 {
		e.after(wait, s)
	}
}

// dropMetadata removes the configs {app}/{rev} of the revisions in due that
// no instance of the registry's service app names, then takes them out of
// the ledger; every write fenced by the lease. It returns the revisions
// removed (those taken out of the ledger).
func (e *Engine) dropMetadata(ctx context.Context, app string, shard int, epoch uint64, ledger, due []string) ([]string, error) {
	list, err := e.deps.Registry.List(ctx, ServiceRef{Namespace: e.cfg.Namespace, Group: e.cfg.Group, Name: app})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", app, err)
	}
	inUse := map[string]bool{}
	for _, in := range list {
		inUse[in.Metadata[keyMetaRevision]] = true
	}
	var removed []string
	for _, rev := range due {
		if inUse[rev] {
			continue
		}
		if !e.deps.Ownership.Owns(shard, epoch) {
			return nil, errFenced
		}
		if err := e.deps.Configs.RemoveConfig(ctx, ConfigRef{Namespace: e.cfg.Namespace, Group: rev, DataID: app}); err != nil {
			return nil, err
		}
		removed = append(removed, rev)
	}
	if len(removed) == 0 {
		return nil, nil
	}
	if !e.deps.Ownership.Owns(shard, epoch) {
		return nil, errFenced
	}
	rest := without(ledger, func(r string) bool { return slices.Contains(removed, r) })
	if err := e.writeLedger(ctx, LedgerMetadataGroup, app, rest); err != nil {
		return nil, err
	}
	e.log.Info("removed unused remote metadata", "app", app, "revisions", removed)
	return removed, nil
}
