package syncer

import (
	"context"
	"sync"
)

// probeLoop sweeps the ports of the instances this worker keeps.
func (e *Engine) probeLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.clock.After(e.jitter(e.cfg.ProbeInterval)):
			e.Sweep(e.ctx)
		}
	}
}

type probeTarget struct {
	service string
	addr    string
	node    string
}

// Sweep probes every kept instance once (bounded concurrency). A failed
// probe asks ZooKeeper whether the provider node exists: only when it says
// the node is gone is the instance evicted (through the service's next
// reconcile, which deregisters it and records the event); a node still
// present, or an unknown answer, is counted and left alone. It returns when
// the sweep is done.
func (e *Engine) Sweep(ctx context.Context) {
	e.mu.Lock()
	var targets []probeTarget
	for s, st := range e.services {
		for _, ns := range st.names {
			for a, r := range ns.registered {
				if r.Node != "" {
					targets = append(targets, probeTarget{service: s, addr: a, node: r.Node})
				}
			}
		}
	}
	e.mu.Unlock()
	sem := make(chan struct{}, e.cfg.ProbeConcurrency)
	var wg sync.WaitGroup
	for _, t := range targets {
		select {
		case <-ctx.Done():
		case sem <- struct{}{}:
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				e.probeOne(ctx, t)
			}()
			continue
		}
		break
	}
	wg.Wait()
}

func (e *Engine) probeOne(ctx context.Context, t probeTarget) {
	pctx, cancel := context.WithTimeout(ctx, e.cfg.ProbeTimeout)
	err := e.prober.Probe(pctx, t.addr)
	cancel()
	if err == nil || ctx.Err() != nil {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, e.cfg.ProbeTimeout)
	exists, zerr := e.deps.Source.ProviderExists(qctx, t.node)
	cancel()
	switch {
	case zerr != nil:
		e.m.probeFailures.WithLabelValues("unknown").Inc()
		e.log.Debug("probe failed; zookeeper unreachable, instance kept", "addr", t.addr, "node", t.node, "err", zerr)
	case exists:
		e.m.probeFailures.WithLabelValues("present").Inc()
		e.log.Debug("probe failed; provider node present, instance kept", "addr", t.addr, "err", err)
	default:
		e.m.probeFailures.WithLabelValues("gone").Inc()
		e.mu.Lock()
		next := map[string]bool{t.node: true}
		for n := range e.evictions[t.service] {
			next[n] = true
		}
		e.evictions[t.service] = next
		e.mu.Unlock()
		e.enqueue(t.service, false, false)
	}
}
