package syncer

// What the worker asks of a running engine for the console and for
// cluster-wide commands: a per-service view of its state (counts) and a
// full reconcile of one service on demand. Both only read the engine's
// state under its lock (or queue work as the loop does); neither changes
// how a service is processed.

// ProviderState is one provider node of the last applied snapshot of a
// ZooKeeper service, as the engine applied it.
type ProviderState struct {
	// Node is the provider's ZooKeeper node path (its name is the encoded
	// provider URL, so it says the application and withNacos).
	Node string
	// Name is the registry service the provider maps to; Addr its ip:port.
	Name, Addr string
	// Synced: an instance built from this node (or adopted at its address)
	// is registered and beaten by this engine now.
	Synced bool
}

// ServiceState is one owned ZooKeeper service as the engine holds it.
type ServiceState struct {
	Service string // the ZooKeeper service (e.g. "org.foo.Bar")
	// Desired: providers that should be registered (after filters and app
	// modes); Skipped: providers not synced, by reason.
	Desired int
	Skipped map[SkipReason]int
	// Failing: the last reconcile of the service failed (retried with
	// backoff), so its desired providers that are not Synced are failing.
	Failing bool
	// Providers lists every node of the last applied snapshot.
	Providers []ProviderState
}

// Services returns the state of every service of a shard this engine
// owns now, in no particular order. The per-service maps it reads are
// replaced, never mutated, so only the copy of the references is made
// under the engine's lock.
func (e *Engine) Services() []ServiceState {
	type held struct {
		s string
		// names and their registered maps, copied under mu
		reg map[string]map[string]Registered
		// nodes, desired, skipped, attempts likewise
		nodes    map[string]nodeRec
		desired  int
		skipped  map[SkipReason]int
		attempts int
	}
	e.mu.Lock()
	list := make([]held, 0, len(e.services))
	for s, st := range e.services {
		if _, ok := e.owned[st.shard]; !ok {
			continue
		}
		h := held{s: s, nodes: st.nodes, desired: st.desired, skipped: st.skipped, attempts: st.attempts,
			reg: make(map[string]map[string]Registered, len(st.names))}
		for n, ns := range st.names {
			h.reg[n] = ns.registered
		}
		list = append(list, h)
	}
	e.mu.Unlock()
	out := make([]ServiceState, 0, len(list))
	for _, h := range list {
		ss := ServiceState{Service: h.s, Desired: h.desired, Failing: h.attempts > 0, Skipped: map[SkipReason]int{},
			Providers: make([]ProviderState, 0, len(h.nodes))}
		for r, n := range h.skipped {
			if n > 0 {
				ss.Skipped[r] = n
			}
		}
		for node, rec := range h.nodes {
			_, synced := h.reg[rec.name][rec.addr]
			ss.Providers = append(ss.Providers, ProviderState{Node: node, Name: rec.name, Addr: rec.addr, Synced: synced})
		}
		out = append(out, ss)
	}
	return out
}

// Resync queues a full reconcile (with a List from the registry) of one
// ZooKeeper service and reports whether this engine owns it now; a
// service it does not own is left alone (its owner resyncs it). service
// may also be a registry service name the engine holds (it is mapped to
// its ZooKeeper service); the ZooKeeper service is returned.
func (e *Engine) Resync(service string) (zkService string, owned bool) {
	zkService = service
	e.mu.Lock()
	if _, ok := e.services[service]; !ok {
		for s, st := range e.services {
			if _, ok := st.names[service]; ok {
				zkService = s
				break
			}
		}
	}
	_, owned = e.owned[e.deps.ShardOf(zkService)]
	e.mu.Unlock()
	if owned {
		e.enqueue(zkService, true, false)
	}
	return zkService, owned
}
