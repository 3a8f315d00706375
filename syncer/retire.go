package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Retire stops the engine like Stop, then deregisters, instead of releasing,
// the instances it registered for the ZooKeeper services remove selects (a
// deleted task, or the services a narrowed task no longer covers); the rest
// are released. For the mapping keys and applications remove selects it
// then takes out of the config service what Ferry's ledger says Ferry wrote
// (ledger.go): its apps from each mapping config, and the application's
// copied metadata revisions that no instance left in the registry names;
// nothing else. Deregistrations run on at most Workers goroutines, bounded
// by ctx; one that fails leaves its instances unbeaten, so they expire on
// the registry. Idempotent with Stop: only the first of the two acts.
func (e *Engine) Retire(ctx context.Context, remove func(service string) bool) error {
	return e.stop(ctx, remove)
}

type deregWork struct {
	ref   ServiceRef
	insts []Instance
}

// deregWork lists every instance the service may have in the registry
// through this engine: registered, and those of a failed Keep.
func (st *svcState) deregWork() []deregWork {
	byName := map[string]*deregWork{}
	seen := map[string]map[string]bool{}
	add := func(name string, ref ServiceRef, in Instance) {
		w := byName[name]
		if w == nil {
			w = &deregWork{ref: ref}
			byName[name] = w
			seen[name] = map[string]bool{}
		}
		if a := in.Addr(); !seen[name][a] {
			seen[name][a] = true
			w.insts = append(w.insts, in)
		}
	}
	for n, ns := range st.names {
		for _, r := range ns.registered {
			add(n, ns.ref, r.Instance)
		}
	}
	for n, u := range st.unsettled {
		for _, in := range u.insts {
			add(n, u.ref, in)
		}
	}
	out := make([]deregWork, 0, len(byName))
	for _, w := range byName {
		out = append(out, *w)
	}
	return out
}

// deregisterAll removes each service's instances, Workers at a time.
func (e *Engine) deregisterAll(ctx context.Context, work []deregWork) error {
	sem := make(chan struct{}, e.cfg.Workers)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, w := range work {
		if ctx.Err() != nil {
			failed.Add(int64(len(w.insts)))
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := e.deps.Registry.Deregister(ctx, w.ref, w.insts); err != nil {
				failed.Add(int64(len(w.insts)))
				e.log.Warn("deregistration at retire failed; the instances expire unbeaten", "registry_service", w.ref.Name, "err", err)
				return
			}
			e.m.actions.WithLabelValues(ActDeregister.String()).Add(float64(len(w.insts)))
		}()
	}
	wg.Wait()
	n := 0
	for _, w := range work {
		n += len(w.insts)
	}
	e.log.Info("task retired: deregistered its instances", "instances", n, "failed", failed.Load())
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("syncer: retire: %d of %d instances not deregistered (they expire unbeaten)", f, n)
	}
	return nil
}

// configWork is one mapping key's or one application's configs to retire,
// with the engine's view of its ledger when it has one.
type configWork struct {
	iface, app   string // one of the two
	shard        int
	epoch        uint64
	ledger       []string
	ledgerLoaded bool
}

// configWork lists the owned mapping keys and applications remove selects:
// those the engine holds state for and those the catalog lists.
func (e *Engine) configWork(remove func(string) bool) []configWork {
	var catalog []string
	if e.deps.AppSource != nil {
		for _, app := range e.deps.AppSource.Apps() {
			catalog = append(catalog, AppKey(app))
		}
	}
	for _, iface := range e.deps.Mappings.Mappings() {
		catalog = append(catalog, MappingKey(iface))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	byKey := map[string]configWork{}
	for k, ms := range e.mapStates {
		if ep, ok := e.owned[ms.shard]; ok && ep == ms.epoch && remove(k) {
			iface, _ := mappingOfKey(k)
			byKey[k] = configWork{iface: iface, shard: ms.shard, epoch: ms.epoch, ledger: ms.written, ledgerLoaded: ms.loaded}
		}
	}
	for k, st := range e.services {
		app, ok := appOfKey(k)
		if !ok || !st.app || !remove(k) {
			continue
		}
		if ep, ok := e.owned[st.shard]; ok && ep == st.epoch {
			byKey[k] = configWork{app: app, shard: st.shard, epoch: st.epoch, ledger: st.metaLedger, ledgerLoaded: st.metaLoaded}
		}
	}
	for _, k := range catalog {
		if _, ok := byKey[k]; ok || !remove(k) {
			continue
		}
		sh := e.deps.ShardOf(k)
		ep, ok := e.owned[sh]
		if !ok {
			continue
		}
		w := configWork{shard: sh, epoch: ep}
		if iface, ok := mappingOfKey(k); ok {
			w.iface = iface
		} else {
			w.app, _ = appOfKey(k)
		}
		byKey[k] = w
	}
	out := make([]configWork, 0, len(byKey))
	for _, w := range byKey {
		out = append(out, w)
	}
	return out
}

// retireConfigs removes what each work's ledger names, Workers at a time,
// after the instances were deregistered (so that only instances Ferry did
// not register still keep a metadata revision).
func (e *Engine) retireConfigs(ctx context.Context, work []configWork) error {
	sem := make(chan struct{}, e.cfg.Workers)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, w := range work {
		if ctx.Err() != nil {
			failed.Add(1)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var err error
			if w.iface != "" {
				_, _, err = e.syncMapping(ctx, w.iface, w.shard, w.epoch, nil, w.ledger, w.ledgerLoaded)
			} else {
				err = e.retireAppMetadata(ctx, w)
			}
			if err != nil && !errors.Is(err, ErrNoConfigService) {
				failed.Add(1)
				e.log.Warn("removing configs at retire failed; they stay", "interface", w.iface, "app", w.app, "err", err)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("syncer: retire: the configs of %d of %d keys not removed", f, len(work))
	}
	return nil
}

// retireAppMetadata removes every revision the app's ledger names that no
// instance left in the registry names, and the ledger with them.
func (e *Engine) retireAppMetadata(ctx context.Context, w configWork) error {
	ledger := w.ledger
	if !w.ledgerLoaded {
		var err error
		if ledger, err = e.readLedger(ctx, LedgerMetadataGroup, w.app); err != nil {
			return err
		}
	}
	if len(ledger) == 0 {
		return nil
	}
	_, err := e.dropMetadata(ctx, w.app, w.shard, w.epoch, ledger, ledger)
	return err
}
