package syncer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Retire stops the engine like Stop, then deregisters, instead of releasing,
// the instances it registered for the ZooKeeper services remove selects (a
// deleted task, or the services a narrowed task no longer covers); the rest
// are released. Deregistrations run on at most Workers goroutines, bounded
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
