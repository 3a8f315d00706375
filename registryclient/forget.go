package registryclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrysync/ferry/wire"
)

// Forget stops beating addrs of svc (all when none given) and deregisters
// them. Against a server offering Ferry's extension it sends one
// FerryBatchDeregisterRequest per responsible node (the redirect cache
// decides each address's node, as for beats; split at MaxBatchBeats),
// follows redirects, and deregisters what the batch could not settle (a node
// unreachable, too many redirects) one by one over HTTP. Without the
// extension (the server check did not offer it, or the request is answered
// 302) every instance goes over HTTP: DELETE /nacos/v1/ns/instance with
// ephemeral=true on the responsible node, falling back to the other
// servers. An instance the server does not know counts as deregistered (as
// Nacos answers). The errors of all instances are joined. The forgotten
// addresses' redirect entries go with them (unless another kept instance
// has the same address); a redirect the deregistration meets is followed,
// and cached only for an address some kept instance still has.
func (c *Client) Forget(ctx context.Context, svc ServiceRef, addrs ...Addr) error {
	svc, err := c.ref(svc)
	if err != nil {
		return err
	}
	c.beats.mu.Lock()
	if len(addrs) == 0 {
		for a := range c.beats.bySvc[svc] {
			addrs = append(addrs, a)
		}
	}
	items := make([]beatKey, len(addrs))
	nodes := map[string]string{} // the cached nodes, taken before release drops them
	for i, a := range addrs {
		items[i] = beatKey{svc: svc, addr: a}
		if n, ok := c.beats.redirect[a.client()]; ok {
			nodes[a.client()] = n
		}
	}
	c.beats.release(svc, addrs)
	c.beats.mu.Unlock()
	return c.deregister(ctx, items, nodes)
}

// client is the beat-kept client a is an instance of ("ip:port", the
// redirect cache's key).
func (a Addr) client() string { return wire.BeatAddr(a.IP, a.Port) }

// deregister removes beat-kept instances: in batches when the server has
// the extension, the rest one HTTP DELETE each. nodes is the responsible
// node of each address known so far ("ip:port" → node; none = the main
// server), updated by the redirects met.
func (c *Client) deregister(ctx context.Context, items []beatKey, nodes map[string]string) error {
	if len(items) == 0 {
		return nil
	}
	var errs []error
	rest := items
	if c.batchBeat.Load() != capUnsupported && c.batchDereg.Load() != capUnsupported {
		rest, errs = c.batchDeregister(ctx, items, nodes)
	}
	for _, it := range rest {
		err := c.httpDeregister(ctx, nodes[it.addr.client()], it.svc, it.addr)
		if err == nil {
			c.m.deregistered.WithLabelValues("http").Inc()
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// maxDeregisterHops bounds the redirects one instance of a bulk deregister
// follows before it goes over HTTP.
const maxDeregisterHops = 3

// errNoBatchDeregister: the server lacks FerryBatchDeregisterRequest.
var errNoBatchDeregister = errors.New("registryclient: server does not support batch deregister")

// batchDeregister sends items in FerryBatchDeregisterRequests, one per node
// (nodes decides each address's; split at MaxBatchBeats), following
// redirects. It returns the items left for HTTP (no extension, a failed
// request, too many redirects) and the errors of items the server refused
// as invalid. A redirect updates nodes, and the client's cache when the
// address is still kept; a failed node is dropped from both.
func (c *Client) batchDeregister(ctx context.Context, items []beatKey, nodes map[string]string) (rest []beatKey, errs []error) {
	pending := items
	for hop := 0; len(pending) > 0; hop++ {
		if hop == maxDeregisterHops {
			return append(rest, pending...), errs
		}
		byNode := map[string][]beatKey{}
		var order []string
		for _, it := range pending {
			node := nodes[it.addr.client()]
			if _, ok := byNode[node]; !ok {
				order = append(order, node)
			}
			byNode[node] = append(byNode[node], it)
		}
		pending = nil
		for _, node := range order {
			es := byNode[node]
			for len(es) > 0 {
				n := min(len(es), c.cfg.MaxBatchBeats)
				req, ordered := deregisterRequest(es[:n])
				es = es[n:]
				if c.batchDereg.Load() == capUnsupported {
					rest = append(rest, ordered...)
					continue
				}
				all, addr, err := c.sendDeregister(ctx, node, req)
				if err != nil {
					// The node's other chunks go the same way.
					left := append(ordered, es...)
					es = nil
					c.clearRedirects(node, nodes) // "" clears nothing
					switch {
					case errors.Is(err, errNoBatchDeregister):
						rest = append(rest, left...)
					case node != "" && ctx.Err() == nil:
						// The entries naming node are cleared: the next
						// round asks the main server.
						c.log.Warn("batch deregister failed on a redirect node: asking the main server", "node", node, "count", len(left), "err", err)
						pending = append(pending, left...)
					default:
						c.log.Warn("batch deregister failed: deregistering one by one", "server", addr, "count", len(left), "err", err)
						rest = append(rest, left...)
					}
					continue
				}
				settled := 0
				c.beats.mu.Lock()
				for i, r := range all {
					it := ordered[i]
					switch r.Status {
					case wire.BeatOK, wire.BeatUnknown:
						settled++
					case wire.BeatRedirect:
						a := it.addr.client()
						if r.Redirect == "" || r.Redirect == node {
							delete(nodes, a)
						} else {
							nodes[a] = r.Redirect
						}
						c.beats.redirected(a, node, r.Redirect)
						c.m.redirects.Inc()
						pending = append(pending, it)
					default:
						errs = append(errs, fmt.Errorf("%w: deregister %s %s:%d at %s: %s", ErrInvalidParam, it.svc, it.addr.IP, it.addr.Port, addr, r.Message))
					}
				}
				c.beats.mu.Unlock()
				c.m.deregistered.WithLabelValues("batch").Add(float64(settled))
			}
		}
	}
	return rest, errs
}

// deregisterRequest builds one request of items, grouped by service and
// cluster; ordered is items in answer order.
func deregisterRequest(items []beatKey) (req *wire.FerryBatchDeregisterRequest, ordered []beatKey) {
	groups, ordered := groupAddrs(items, func(it beatKey) (ServiceRef, string, string) {
		return it.svc, it.addr.Cluster, wire.BeatAddr(it.addr.IP, it.addr.Port)
	})
	return &wire.FerryBatchDeregisterRequest{Groups: groups}, ordered
}

// groupAddrs groups items into wire.BeatGroups by service and cluster, in
// the order each group first appears; ordered is the items in answer order
// (wire: group by group, address by address).
func groupAddrs[T any](items []T, at func(T) (svc ServiceRef, cluster, addr string)) (groups []wire.BeatGroup, ordered []T) {
	type groupKey struct {
		svc     ServiceRef
		cluster string
	}
	gidx := map[groupKey]int{}
	var members [][]T
	for _, it := range items {
		svc, cluster, addr := at(it)
		k := groupKey{svc, cluster}
		g, ok := gidx[k]
		if !ok {
			g = len(groups)
			gidx[k] = g
			groups = append(groups, wire.BeatGroup{Namespace: svc.Namespace, GroupName: svc.Group, ServiceName: svc.Name, Cluster: cluster})
			members = append(members, nil)
		}
		groups[g].Addrs = append(groups[g].Addrs, addr)
		members[g] = append(members[g], it)
	}
	ordered = make([]T, 0, len(items))
	for _, m := range members {
		ordered = append(ordered, m...)
	}
	return groups, ordered
}

// sendDeregister sends one bulk deregister to node ("" = the main
// connection's server) and returns one result per address, in order, and
// the server's address. errNoBatchDeregister when the server lacks the
// extension.
func (c *Client) sendDeregister(ctx context.Context, node string, req *wire.FerryBatchDeregisterRequest) ([]wire.BeatResult, string, error) {
	s, err := c.nodeSession(ctx, node)
	if err != nil {
		return nil, node, err
	}
	addr := s.srv.Addr()
	if !s.batchBeat {
		return nil, addr, errNoBatchDeregister
	}
	resp, err := c.callOn(ctx, s, req)
	if err != nil {
		var se *ServerError
		if errors.As(err, &se) && se.Code == wire.CodeNoHandler {
			if c.batchDereg.Swap(capUnsupported) != capUnsupported {
				c.log.Warn("server has batch beats but no batch deregister: deregistering one by one over HTTP", "server", addr)
			}
			return nil, addr, fmt.Errorf("%w: %w", errNoBatchDeregister, err)
		}
		if isConnErr(err) {
			if node == "" {
				c.kickSession(s)
			} else {
				s.close(err)
			}
		}
		return nil, addr, err
	}
	r, ok := resp.(*wire.FerryBatchDeregisterResponse)
	if !ok {
		return nil, addr, fmt.Errorf("%w: FerryBatchDeregisterRequest at %s: answered %s", ErrProtocol, addr, resp.TypeName())
	}
	all, err := r.All(req)
	if err != nil {
		return nil, addr, fmt.Errorf("%w: FerryBatchDeregisterRequest at %s: %v", ErrProtocol, addr, err)
	}
	return all, addr, nil
}

// clearRedirects forgets every address cached on node (it failed), in the
// client's cache and in nodes.
func (c *Client) clearRedirects(node string, nodes map[string]string) {
	if node == "" {
		return
	}
	for a, n := range nodes {
		if n == node {
			delete(nodes, a)
		}
	}
	c.beats.mu.Lock()
	c.beats.dropNode(node)
	c.beats.mu.Unlock()
}
