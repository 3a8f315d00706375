package syncer

import (
	"context"
	"fmt"
	"strings"
)

// Remote application metadata (docs/dubbo3-app-level.md §3): an instance
// whose dubbo.metadata.storage-type is "remote" makes consumers read the
// application's MetadataInfo for its revision from the metadata report,
// which on Nacos is the config dataId {app}, group {revision}
// (NacosMetadataReport.getAppMetadata). Per application all or nothing:
// the metadata of a revision is copied before any instance of that
// revision is registered; an instance whose revision's metadata cannot be
// copied (missing in ZooKeeper, above the config service's limit, a failed
// call) is held back: not registered, or left as it was registered.

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
			err = e.deps.Configs.PublishConfig(ctx, ref, content)
		}
		if e.configsGone(err) {
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
