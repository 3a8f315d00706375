package zkload

import (
	"context"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
)

// Dubbo 3 application-level instances: /services/{app}/{ip:port}, Curator
// ServiceInstance JSON as Java Dubbo 3.3 writes it (see
// docs/dubbo3-app-level.md). Apps are "load-svc-app-NNNN", so they do not
// collide with the interface-level providers' applications.

// AppName is application a's name.
func (l *Loader) AppName(a int) string { return fmt.Sprintf("load-svc-app-%04d", a) }

// AppHost is the address of instance j of application a (172.16/12, apart
// from the interface-level hosts in 10/8).
func (l *Loader) AppHost(a, j int) string {
	n := a*100_000 + j + 1
	return fmt.Sprintf("172.%d.%d.%d", 16+(n>>16&15), n>>8&255, n&255)
}

// AppPath is the node of instance j of application a.
func (l *Loader) AppPath(a, j int) string {
	return fmt.Sprintf("/services/%s/%s:20880", l.AppName(a), l.AppHost(a, j))
}

// AppData is the node data of instance j of application a started at ts
// (ms), with metadata revision rev.
func (l *Loader) AppData(a, j int, ts int64, rev string) []byte {
	app, host := l.AppName(a), l.AppHost(a, j)
	return fmt.Appendf(nil, `{"name":%q,"id":"%s:20880","address":%q,"port":20880,"sslPort":null,`+
		`"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"%s:20880","name":%q,`+
		`"metadata":{"dubbo.endpoints":"[{\"port\":20880,\"protocol\":\"dubbo\"}]",`+
		`"dubbo.metadata-service.url-params":"{\"version\":\"1.0.0\",\"dubbo\":\"2.0.2\",\"release\":\"3.3.1\",\"side\":\"provider\",\"port\":\"20880\",\"protocol\":\"dubbo\"}",`+
		`"dubbo.metadata.revision":%q,"dubbo.metadata.storage-type":"local","timestamp":"%d"}},`+
		`"registrationTimeUTC":%d,"serviceType":"DYNAMIC","uriSpec":null}`,
		app, host, host, host, app, rev, ts, ts)
}

// SeedApps writes apps applications with per instances each under
// /services (the app nodes persistent, the instances ephemeral unless the
// loader is persistent).
func (l *Loader) SeedApps(ctx context.Context, apps, per int) (Stats, error) {
	start := time.Now()
	if err := l.mkdirs("/services"); err != nil {
		return Stats{}, err
	}
	dirs := make([]*zk.CreateRequest, 0, apps)
	for a := 0; a < apps; a++ {
		dirs = append(dirs, &zk.CreateRequest{Path: "/services/" + l.AppName(a), Acl: zk.WorldACL(zk.PermAll)})
	}
	if err := l.createAll(ctx, dirs); err != nil {
		return Stats{}, err
	}
	insts := make([]*zk.CreateRequest, 0, apps*per)
	for a := 0; a < apps; a++ {
		for j := 0; j < per; j++ {
			insts = append(insts, &zk.CreateRequest{Path: l.AppPath(a, j), Data: l.AppData(a, j, l.nextTS(), "r1"),
				Acl: zk.WorldACL(zk.PermAll), Flags: l.flags()})
		}
	}
	if err := l.createAll(ctx, insts); err != nil {
		return Stats{}, err
	}
	return Stats{Services: apps, Providers: len(insts), Duration: time.Since(start)}, nil
}
