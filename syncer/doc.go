// Package syncer is Ferry's sync engine: it keeps a Nacos-compatible registry
// in step with the Dubbo providers found in one ZooKeeper cluster (one way).
//
// The package is layered as STYLE.md §3 asks:
//   - naming.go: the Dubbo → Nacos mapping (service name, instance, metadata,
//     skip filters) as pure functions;
//   - reconcile.go: the level-based reconcile of one Nacos service (desired vs
//     registered → actions, with the stale-removal guard) and the task-wide
//     mass-removal guard, as pure functions;
//   - engine.go: the state machine around them (coalesced per-service work, a
//     bounded apply pool, retries, periodic full reconcile, shard ownership,
//     app modes, the port-probe sweeper). All I/O goes through the small
//     interfaces in deps.go, which the real zkwatch, store and registryclient
//     satisfy through thin adapters wired in cmd/.
package syncer
