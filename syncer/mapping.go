package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ferrysync/ferry/zkwatch"
)

// Dubbo 3's interface → application mapping (docs/dubbo3-app-level.md §2):
// /dubbo/mapping/{interface} (comma-separated app names) becomes the config
// dataId {interface}, group "mapping" in the task's namespace, as Dubbo's
// NacosMetadataReport keeps it: the apps ZooKeeper names (those in mode
// sync), merged with the apps only the config service knows (native
// registrations), sorted and comma-joined like ServiceNameMapping's
// TreeSet; removed when ZooKeeper's node goes and no other app remains.
// An interface is the engine work key MappingKey(iface), so it shares the
// queue, shards, leases, retries and full reconcile with instances.

// MappingGroup is the config group of mappings
// (ServiceNameMapping.DEFAULT_MAPPING_GROUP).
const MappingGroup = "mapping"

// MappingSource is the mapping part of the ZooKeeper catalog. Its changes
// arrive on Source.Changes as MappingKey(iface). Safe for concurrent use.
type MappingSource interface {
	// Mappings lists the interfaces that have a mapping node.
	Mappings() []string
	// Mapping returns the node's data; false when there is no node.
	Mapping(iface string) (string, bool)
}

// ConfigRef names one config in the target's config service.
type ConfigRef struct {
	Namespace string
	Group     string
	DataID    string
}

// Configs is the target's config service (package registryclient). Calls
// for one key are never concurrent.
type Configs interface {
	// GetConfig reads a config; found false when it does not exist.
	GetConfig(ctx context.Context, r ConfigRef) (content string, found bool, err error)
	// PublishConfig creates or replaces a config.
	PublishConfig(ctx context.Context, r ConfigRef, content string) error
	// RemoveConfig deletes a config (a missing one is no error).
	RemoveConfig(ctx context.Context, r ConfigRef) error
}

// MappingKey is the engine's work key of an interface's mapping.
func MappingKey(iface string) string { return zkwatch.MappingKey(iface) }

func mappingOfKey(key string) (string, bool) { return strings.CutPrefix(key, zkwatch.MappingKeyPrefix) }

// ParseMapping splits a mapping's content into app names as Dubbo's
// ServiceNameMapping.getAppNames does (split on ",", trimmed, empty ones
// dropped), sorted and unique; bad reports an empty or duplicate name.
func ParseMapping(content string) (apps []string, bad bool) {
	if strings.TrimSpace(content) == "" {
		return nil, false
	}
	seen := map[string]bool{}
	for _, a := range strings.Split(content, ",") {
		a = strings.TrimSpace(a)
		if a == "" || seen[a] {
			bad = true
			continue
		}
		seen[a] = true
		apps = append(apps, a)
	}
	slices.Sort(apps)
	return apps, bad
}

// MergeMapping returns the content to keep in the config service: the apps
// ZooKeeper names now (zk), plus the config's apps that this sync did not
// write (written: what it wrote last, from ZooKeeper), sorted and joined
// with ","; "" means the config should not exist. An app only the config
// service knows is never dropped.
func MergeMapping(zk, config, written []string) string {
	set := map[string]bool{}
	for _, a := range zk {
		set[a] = true
	}
	for _, a := range config {
		if !slices.Contains(written, a) {
			set[a] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// mapState is what the engine keeps per mapping key (guarded by its mu).
type mapState struct {
	shard int
	epoch uint64
	// loaded: the ledger was read since ownership began; written is then
	// its content, the apps this sync claims in the config.
	loaded   bool
	written  []string
	badSeen  string // the content last reported as bad (reported once)
	attempts int
}

// processMapping reconciles one interface's mapping: snapshot (state under
// mu, then the source), plan (ParseMapping, modes, MergeMapping against the
// config service's content and the ledger), apply (fenced ledger and config
// writes, see syncMapping), commit.
func (e *Engine) processMapping(key, iface string) {
	shard := e.deps.ShardOf(key)
	e.mu.Lock()
	epoch, owned := e.owned[shard]
	if !owned || e.stopped {
		e.mu.Unlock()
		return
	}
	ms := e.mapStates[key]
	if ms == nil || ms.epoch != epoch {
		ms = &mapState{shard: shard, epoch: epoch}
		e.mapStates[key] = ms
	}
	written, loaded, badSeen := ms.written, ms.loaded, ms.badSeen
	e.mu.Unlock()

	synced := e.deps.Source.Synced()
	raw, exists := e.deps.Mappings.Mapping(iface)
	synced = synced && e.deps.Source.Synced()
	if !exists && (!synced || (loaded && len(written) == 0)) {
		// Gone while the view is not trusted: wait. Gone and nothing of
		// ours in the config: nothing to remove.
		e.mu.Lock()
		if loaded && len(written) == 0 && e.mapStates[key] == ms {
			delete(e.mapStates, key)
		}
		e.mu.Unlock()
		return
	}
	var zkApps []string
	if exists {
		apps, bad := ParseMapping(raw)
		if bad && raw != badSeen {
			badSeen = raw
			e.record(Event{Kind: EventBadMapping, Service: iface,
				Detail: fmt.Sprintf("node %s/%s: empty or duplicate app names skipped in %q", "mapping", iface, clipDetail(raw))})
		}
		for _, a := range apps {
			if e.mode(a) == ModeSync {
				zkApps = append(zkApps, a)
			}
		}
	}

	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.ApplyTimeout)
	defer cancel()
	written, loaded, err := e.syncMapping(ctx, iface, shard, epoch, zkApps, written, loaded)
	if e.configsGone(err) {
		return
	}
	failed := err != nil
	if failed && !errors.Is(err, errFenced) {
		e.applyFailed(key, ServiceRef{Namespace: e.cfg.Namespace, Group: MappingGroup, Name: iface}, "mapping", err)
	}

	e.mu.Lock()
	attempts := 0
	if e.mapStates[key] == ms {
		ms.badSeen = badSeen
		ms.written, ms.loaded = written, loaded
		if failed {
			ms.attempts++
			attempts = ms.attempts
		} else {
			ms.attempts = 0
			if !exists {
				delete(e.mapStates, key)
			}
		}
	}
	e.mu.Unlock()
	if failed && e.ctx.Err() == nil {
		e.retry(key, max(attempts, 1))
	}
}

func (e *Engine) mode(app string) AppMode {
	if e.deps.Apps == nil {
		return ModeSync
	}
	return e.deps.Apps.Mode(app)
}

// syncMapping makes the config {iface}/mapping hold zkApps plus every app
// this sync did not write, and the ledger hold zkApps. written is the
// ledger's content when loaded (else it is read first). An app of the
// ledger that is now in mode native is handed over: it leaves the ledger
// but stays in the config (the native provider found it there when it
// exported and will not write it again; removing it would make consumers
// drop it). Every write is fenced by the key's lease. It returns the
// ledger's content as it now stands.
func (e *Engine) syncMapping(ctx context.Context, iface string, shard int, epoch uint64, zkApps, written []string, loaded bool) ([]string, bool, error) {
	if !loaded {
		var err error
		if written, err = e.readLedger(ctx, LedgerMappingGroup, iface); err != nil {
			return nil, false, fmt.Errorf("read ledger: %w", err)
		}
	}
	ref := ConfigRef{Namespace: e.cfg.Namespace, Group: MappingGroup, DataID: iface}
	cur, found, err := e.deps.Configs.GetConfig(ctx, ref)
	if err != nil {
		return written, true, fmt.Errorf("get config: %w", err)
	}
	ours := without(written, func(a string) bool { return e.mode(a) == ModeNative })
	curApps, _ := ParseMapping(cur)
	next := MergeMapping(zkApps, curApps, ours)
	// The ledger grows before the config is written...
	if claim := union(written, zkApps); len(claim) > len(written) {
		if !e.deps.Ownership.Owns(shard, epoch) {
			return written, true, errFenced
		}
		if err := e.writeLedger(ctx, LedgerMappingGroup, iface, claim); err != nil {
			return written, true, fmt.Errorf("write ledger: %w", err)
		}
		written = claim
	}
	if next != cur || (next != "" && !found) {
		if !e.deps.Ownership.Owns(shard, epoch) {
			return written, true, errFenced
		}
		if next == "" {
			err = e.deps.Configs.RemoveConfig(ctx, ref)
		} else {
			err = e.deps.Configs.PublishConfig(ctx, ref, next)
		}
		if err != nil {
			return written, true, fmt.Errorf("write config: %w", err)
		}
	}
	// ...and shrinks after.
	if !slices.Equal(written, zkApps) {
		if !e.deps.Ownership.Owns(shard, epoch) {
			return written, true, errFenced
		}
		if err := e.writeLedger(ctx, LedgerMappingGroup, iface, zkApps); err != nil {
			return written, true, fmt.Errorf("write ledger: %w", err)
		}
	}
	return zkApps, true, nil
}

// clipDetail shortens node data quoted in an event.
func clipDetail(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
