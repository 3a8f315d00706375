// Command peers runs the same real-client-shaped workload against Ferry's
// registry, ZooKeeper and etcd, one server at a time, each through its own
// native client protocol, and writes a Markdown table and an SVG chart.
//
// It is a module of its own because etcd's libraries are large: the main
// module's go.mod stays free of them. `ferry bench peers` runs it with
// `go run` from the source tree; it can also be run directly:
//
//	cd bench/peers && go run . -ferry ../../bin/ferry -out peers.md -svg peers.svg
//
// The shape: N application connections (-conns, one bench row each) hold
// -services × -replicas ephemeral instances, each connection registering
// one instance of each of its services, as a Dubbo provider process does;
// -readers separate connections then query with one request in flight each.
// Keepalives are each system's client defaults: Nacos gRPC health checks
// after 5 s idle (registryclient, as nacos-sdk-go), ZooKeeper sessions of
// 60 s (Dubbo's default; go-zookeeper pings every third of it), etcd leases
// of 60 s (clientv3 concurrency.Session's default TTL; keepalive every third).
// Every server runs in a process of its own, whose CPU and memory are read
// from /proc.
package main
