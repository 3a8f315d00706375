package worker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/store"
)

// javaAppNode is the /services node data a Java Dubbo 3.3 provider of app
// writes through Curator (CuratorFrameworkUtils.build).
func javaAppNode(app, ip string, port int, revision string, ts int64) []byte {
	return []byte(fmt.Sprintf(`{"name":%q,"id":"%s:%d","address":%q,"port":%d,"sslPort":null,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"%s:%d","name":%q,"metadata":{"dubbo.endpoints":"[{\"port\":%d,\"protocol\":\"tri\"}]","dubbo.metadata-service.url-params":"{\"version\":\"2.0.0\",\"dubbo\":\"2.0.2\",\"release\":\"3.3.1\",\"side\":\"provider\",\"port\":\"%d\",\"protocol\":\"tri\"}","dubbo.metadata.revision":%q,"dubbo.metadata.storage-type":"local","timestamp":"%d"}},"registrationTimeUTC":%d,"serviceType":"DYNAMIC","uriSpec":null}`,
		app, ip, port, ip, port, ip, port, app, port, port, revision, ts, ts+500))
}

// TestWorkerSyncsAppLevelInstances: /services/{app}/{ip:port} nodes reach
// the registry as instances of service {app} in the task's group, with the
// instance metadata as Dubbo's NacosServiceDiscovery registers it, seen by
// a real client asking for healthy instances only; an update, a removal and
// a node that is not JSON follow.
func TestWorkerSyncsAppLevelInstances(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, stk := newStack(ctx, t, 1, 1, 0)
	conn := stk.loader.Conn()
	const app = "pay-service"
	for _, p := range []string{"/services", "/services/" + app} {
		if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			t.Fatal(err)
		}
	}
	node := func(ip string) string { return "/services/" + app + "/" + ip + ":50051" }
	now := time.Now().UnixMilli()
	for _, ip := range []string{"127.0.0.11", "127.0.0.12"} {
		if _, err := conn.Create(node(ip), javaAppNode(app, ip, 50051, "rev1", now), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := Start(ctx, stk.workerConfig(t, ""), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())

	ccfg := registryclient.DefaultConfig()
	ccfg.Servers = []string{stk.regAddr}
	c, err := registryclient.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ref := registryclient.ServiceRef{Namespace: "public", Group: "DEFAULT_GROUP", Name: app}
	healthy := func() map[string]map[string]string {
		qctx, qcancel := context.WithTimeout(ctx, 3*time.Second)
		defer qcancel()
		info, err := c.Query(qctx, ref, "", true)
		if err != nil {
			return nil
		}
		out := map[string]map[string]string{}
		for _, h := range info.Hosts {
			if h.Healthy && h.Enabled {
				out[fmt.Sprintf("%s:%d", h.IP, h.Port)] = h.Metadata
			}
		}
		return out
	}
	waitFor(t, "both app instances healthy in the registry", 60*time.Second, func() bool { return len(healthy()) == 2 })
	md := healthy()["127.0.0.11:50051"]
	for k, v := range map[string]string{
		"dubbo.endpoints":             `[{"port":50051,"protocol":"tri"}]`,
		"dubbo.metadata.revision":     "rev1",
		"dubbo.metadata.storage-type": "local",
		"timestamp":                   fmt.Sprint(now),
		"ferry.worker":                "w1",
	} {
		if md[k] != v {
			t.Fatalf("metadata %s = %q, want %q (all: %v)", k, md[k], v, md)
		}
	}
	if !strings.Contains(md["dubbo.metadata-service.url-params"], `"protocol":"tri"`) {
		t.Fatalf("url-params %q", md["dubbo.metadata-service.url-params"])
	}

	// Update: a new revision.
	if _, err := conn.Set(node("127.0.0.11"), javaAppNode(app, "127.0.0.11", 50051, "rev2", now), -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new revision", 30*time.Second, func() bool { return healthy()["127.0.0.11:50051"]["dubbo.metadata.revision"] == "rev2" })

	// A node that is not JSON: skipped with an event naming it; the rest stay.
	bad := "/services/" + app + "/127.0.0.13:50051"
	if _, err := conn.Create(bad, []byte("not json"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an event naming the bad node", 30*time.Second, func() bool {
		evs, err := w.st.ListEvents(ctx, store.EventFilter{Kind: string(EventNodeSkipped)})
		return err == nil && len(evs) == 1 && strings.Contains(evs[0].Detail, bad)
	})

	// Removal.
	if err := conn.Delete(node("127.0.0.12"), -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed instance gone", 30*time.Second, func() bool {
		h := healthy()
		_, gone := h["127.0.0.12:50051"]
		return len(h) == 1 && !gone
	})
	// Counted apart from interface-level instances (1 seeded provider).
	waitFor(t, "counts by level in the status", 30*time.Second, func() bool {
		e := w.Status().Engine
		return e.AppRegistered == 1 && e.AppDesired == 1 && e.Registered == 1
	})
}

// TestWorkerSyncsMapping: /dubbo/mapping/{interface} reaches the bundled
// registry's config service as dataId {interface}, group "mapping" (read
// back by a real client the way Dubbo's NacosMetadataReport reads it),
// merged with an app only Nacos knows, which stays when ZooKeeper's node
// goes.
func TestWorkerSyncsMapping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, stk := newStack(ctx, t, 1, 1, 0)
	conn := stk.loader.Conn()
	ccfg := registryclient.DefaultConfig()
	ccfg.Servers = []string{stk.regAddr}
	c, err := registryclient.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const iface = "org.apache.dubbo.demo.PayService"
	ref := registryclient.ConfigRef{Group: "mapping", DataID: iface}
	// A provider that already moved to Nacos published its own mapping.
	if err := c.PublishConfig(ctx, ref, "native-app"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Create("/dubbo/mapping", nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
		t.Fatal(err)
	}
	node := "/dubbo/mapping/" + iface
	if _, err := conn.Create(node, []byte("pay-service"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	w, err := Start(ctx, stk.workerConfig(t, ""), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	mapping := func() string {
		qctx, qcancel := context.WithTimeout(ctx, 3*time.Second)
		defer qcancel()
		content, found, err := c.GetConfig(qctx, ref)
		if err != nil {
			return "error: " + err.Error()
		}
		if !found {
			return "<none>"
		}
		return content
	}
	waitFor(t, "the merged mapping", 60*time.Second, func() bool { return mapping() == "native-app,pay-service" })
	if _, err := conn.Set(node, []byte("pay-service,pay-service-v2"), -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second app", 30*time.Second, func() bool { return mapping() == "native-app,pay-service,pay-service-v2" })
	if err := conn.Delete(node, -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "only the native app left", 30*time.Second, func() bool { return mapping() == "native-app" })
	// A mapping only ZooKeeper knew goes with its node.
	solo := "/dubbo/mapping/org.Solo"
	if _, err := conn.Create(solo, []byte("solo-app"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	soloRef := registryclient.ConfigRef{Group: "mapping", DataID: "org.Solo"}
	waitFor(t, "solo mapping", 30*time.Second, func() bool {
		content, _, _ := c.GetConfig(ctx, soloRef)
		return content == "solo-app"
	})
	if err := conn.Delete(solo, -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "solo mapping removed", 30*time.Second, func() bool {
		_, found, err := c.GetConfig(ctx, soloRef)
		return err == nil && !found
	})
}

// TestWorkerSyncsRemoteMetadata: an instance with
// dubbo.metadata.storage-type=remote reaches the registry only together
// with its revision's MetadataInfo, copied from /dubbo/metadata/{app}/{rev}
// into the config service as dataId {app}, group {rev}, where Dubbo's
// NacosMetadataReport reads it.
func TestWorkerSyncsRemoteMetadata(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, stk := newStack(ctx, t, 1, 1, 0)
	conn := stk.loader.Conn()
	const app, rev = "order-service", "5c1d0f3e0e1a6b7c8d9e0f1a2b3c4d5e"
	info := `{"app":"order-service","revision":"` + rev + `","services":{"org.example.OrderService:tri":{"name":"org.example.OrderService","protocol":"tri","path":"org.example.OrderService","params":{"side":"provider"}}}}`
	for _, p := range []string{"/services", "/services/" + app, "/dubbo/metadata", "/dubbo/metadata/" + app} {
		if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			t.Fatal(err)
		}
	}
	data := strings.Replace(string(javaAppNode(app, "127.0.0.21", 50051, rev, time.Now().UnixMilli())),
		`"dubbo.metadata.storage-type":"local"`, `"dubbo.metadata.storage-type":"remote"`, 1)
	if _, err := conn.Create("/services/"+app+"/127.0.0.21:50051", []byte(data), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	w, err := Start(ctx, stk.workerConfig(t, ""), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	ccfg := registryclient.DefaultConfig()
	ccfg.Servers = []string{stk.regAddr}
	c, err := registryclient.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ref := registryclient.ServiceRef{Namespace: "public", Group: "DEFAULT_GROUP", Name: app}
	count := func() int {
		info, err := c.Query(ctx, ref, "", true)
		if err != nil {
			return -1
		}
		return len(info.Hosts)
	}
	waitFor(t, "the metadata node missing reported", 60*time.Second, func() bool {
		evs, err := w.st.ListEvents(ctx, store.EventFilter{Kind: "app_metadata_unavailable"})
		return err == nil && len(evs) == 1 && strings.Contains(evs[0].Detail, "/dubbo/metadata/"+app+"/"+rev)
	})
	if n := count(); n != 0 {
		t.Fatalf("%d instances registered before their metadata", n)
	}
	if _, err := conn.Create("/dubbo/metadata/"+app+"/"+rev, []byte(info), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the instance with its metadata", 60*time.Second, func() bool { return count() == 1 })
	got, found, err := c.GetConfig(ctx, registryclient.ConfigRef{Group: rev, DataID: app})
	if err != nil || !found || got != info {
		t.Fatalf("metadata config = %q, %v, %v", got, found, err)
	}
}
