package zkwatch

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-zookeeper/zk"
)

// Real /services payloads. java314 is the dubbo-website quickstart dump
// (Dubbo 3.1.4, observed); java32 and java33 are what ZookeeperServiceDiscovery
// and CuratorFrameworkUtils.build write in 3.2 and 3.3 (same Curator JSON;
// the metadata keys from ServiceInstanceMetadataUtils, 3.3 with a triple
// endpoint and meta-v); dubbogo332 is a dubbo-go v3.3.2 provider's node
// (observed, shared/reference/dubbo.md §1.2: no sslPort, serviceType or
// registrationTimeUTC, a 128-hex revision).
const (
	java314    = `{"name":"first-dubbo-provider","id":"30.221.146.35:20880","address":"30.221.146.35","port":20880,"sslPort":null,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"30.221.146.35:20880","name":"first-dubbo-provider","metadata":{"dubbo.endpoints":"[{\"port\":20880,\"protocol\":\"dubbo\"}]","dubbo.metadata-service.url-params":"{\"connections\":\"1\",\"version\":\"1.0.0\",\"dubbo\":\"2.0.2\",\"release\":\"3.1.4\",\"side\":\"provider\",\"ipv6\":\"fd00:1:5:5200:3218:774a:4f67:2341\",\"port\":\"20880\",\"protocol\":\"dubbo\"}","dubbo.metadata.revision":"871fbc9cb2730caea9b0d858852d5ede","dubbo.metadata.storage-type":"local","ipv6":"fd00:1:5:5200:3218:774a:4f67:2341","timestamp":"1674960780647"}},"registrationTimeUTC":1674960781893,"serviceType":"DYNAMIC","uriSpec":null}`
	java32     = `{"name":"order-service","id":"10.2.0.7:20880","address":"10.2.0.7","port":20880,"sslPort":null,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"10.2.0.7:20880","name":"order-service","metadata":{"dubbo.endpoints":"[{\"port\":20880,\"protocol\":\"dubbo\"}]","dubbo.metadata-service.url-params":"{\"prefer.serialization\":\"fastjson2,hessian2\",\"version\":\"1.0.0\",\"dubbo\":\"2.0.2\",\"release\":\"3.2.11\",\"side\":\"provider\",\"port\":\"20880\",\"protocol\":\"dubbo\"}","dubbo.metadata.revision":"3c0b5a8e0e5f2f4d6a1e9d6d0f5c7b21","dubbo.metadata.storage-type":"local","timestamp":"1714000000123"}},"registrationTimeUTC":1714000001456,"serviceType":"DYNAMIC","uriSpec":null}`
	java33     = `{"name":"pay-service","id":"10.3.0.9:50051","address":"10.3.0.9","port":50051,"sslPort":null,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"10.3.0.9:50051","name":"pay-service","metadata":{"dubbo.endpoints":"[{\"port\":50051,\"protocol\":\"tri\"}]","dubbo.metadata-service.url-params":"{\"prefer.serialization\":\"hessian2,fastjson2\",\"version\":\"2.0.0\",\"dubbo\":\"2.0.2\",\"release\":\"3.3.1\",\"side\":\"provider\",\"port\":\"50051\",\"protocol\":\"tri\"}","dubbo.metadata.revision":"9a1f0c2e7d3b4a5f6e7d8c9b0a1f2e3d","dubbo.metadata.storage-type":"remote","meta-v":"2.0.0","timestamp":"1729000000999"}},"registrationTimeUTC":1729000001000,"serviceType":"DYNAMIC","uriSpec":null}`
	dubbogo332 = `{"name":"demo-provider","id":"192.0.2.2:20000","address":"192.0.2.2","port":20000,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"192.0.2.2:20000","name":"demo-provider","metadata":{"dubbo.endpoints":"[{\"port\":20000,\"protocol\":\"dubbo\"}]","dubbo.metadata.revision":"4c5d0f3e0e1a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e","dubbo.metadata.storage-type":"local","dubbo.subscribed-services.revision":"N/A","registry.id":"zookeeper"}}}`
)

func TestParseAppInstance(t *testing.T) {
	for _, c := range []struct {
		name, data    string
		addr          string
		port          int
		regTime       int64
		serviceType   string
		keys          []string
		wantErr, skip bool
	}{
		{name: "java 3.1.4", data: java314, addr: "30.221.146.35", port: 20880, regTime: 1674960781893, serviceType: "DYNAMIC",
			keys: []string{"dubbo.endpoints", "dubbo.metadata-service.url-params", "dubbo.metadata.revision", "dubbo.metadata.storage-type", "timestamp", "ipv6"}},
		{name: "java 3.2", data: java32, addr: "10.2.0.7", port: 20880, regTime: 1714000001456, serviceType: "DYNAMIC",
			keys: []string{"dubbo.endpoints", "dubbo.metadata-service.url-params", "dubbo.metadata.revision", "dubbo.metadata.storage-type", "timestamp"}},
		{name: "java 3.3", data: java33, addr: "10.3.0.9", port: 50051, regTime: 1729000001000, serviceType: "DYNAMIC",
			keys: []string{"dubbo.endpoints", "dubbo.metadata-service.url-params", "dubbo.metadata.revision", "dubbo.metadata.storage-type", "meta-v", "timestamp"}},
		{name: "dubbo-go 3.3.2", data: dubbogo332, addr: "192.0.2.2", port: 20000,
			keys: []string{"dubbo.endpoints", "dubbo.metadata.revision", "dubbo.metadata.storage-type", "dubbo.subscribed-services.revision", "registry.id"}},
		{name: "not json", data: "{not json", wantErr: true},
		{name: "curator default data (an ip)", data: "10.0.0.1", wantErr: true},
		{name: "no address", data: `{"name":"a","port":1,"payload":{"metadata":{}}}`, wantErr: true},
		{name: "no port", data: `{"name":"a","address":"10.0.0.1","payload":{"metadata":{}}}`, wantErr: true},
		{name: "null port", data: `{"name":"a","address":"10.0.0.1","port":null}`, wantErr: true},
		{name: "port out of range", data: `{"name":"a","address":"10.0.0.1","port":70000}`, wantErr: true},
		{name: "non-string metadata", data: `{"address":"10.0.0.1","port":1,"payload":{"metadata":{"n":5,"b":true,"o":{"x":1},"z":null}}}`,
			addr: "10.0.0.1", port: 1, keys: []string{"n", "b", "o"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseAppInstance([]byte(c.data))
			if c.wantErr {
				if !errors.Is(err, ErrBadInstance) {
					t.Fatalf("err = %v, want ErrBadInstance", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Address != c.addr || got.Port != c.port || got.RegistrationTimeUTC != c.regTime || got.ServiceType != c.serviceType {
				t.Fatalf("got %+v", got)
			}
			if len(got.Metadata) != len(c.keys) {
				t.Fatalf("metadata %v, want keys %v", got.Metadata, c.keys)
			}
			for _, k := range c.keys {
				if _, ok := got.Metadata[k]; !ok {
					t.Fatalf("metadata %v lacks %s", got.Metadata, k)
				}
			}
		})
	}
}

// FuzzParseAppInstance: never panics; an accepted payload has an address
// and a port in range, and parsing its re-encoding gives the same instance.
func FuzzParseAppInstance(f *testing.F) {
	for _, s := range []string{java314, java32, java33, dubbogo332, "{}", `{"address":"a","port":0}`, "null"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseAppInstance(data)
		if err != nil {
			if !errors.Is(err, ErrBadInstance) {
				t.Fatalf("error %v is not ErrBadInstance", err)
			}
			return
		}
		if got.Address == "" || got.Port < 0 || got.Port > 65535 || got.Metadata == nil {
			t.Fatalf("accepted %+v", got)
		}
		md := map[string]any{}
		for k, v := range got.Metadata {
			md[k] = v
		}
		re, err := json.Marshal(map[string]any{"name": got.App, "id": got.ID, "address": got.Address, "port": got.Port,
			"registrationTimeUTC": got.RegistrationTimeUTC, "serviceType": got.ServiceType, "payload": map[string]any{"metadata": md}})
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseAppInstance(re)
		if err != nil || !sameAppInstance(got, again) {
			t.Fatalf("re-encoding %s: %+v, %v; want %+v", re, again, err, got)
		}
	})
}

// TestAppChangesNotified: an instance added, changed and removed each
// deliver AppKey(app) on Changes; a data write that changes nothing does not.
func TestAppChangesNotified(t *testing.T) {
	e := newEnv(t)
	mkdirs(t, e.c, "/services/order-service")
	mkdirs(t, e.c, "/dubbo")
	w := e.watcher(t, nil)
	waitFor(t, "synced", w.Synced)
	rec := record(t, w, nil)
	key := AppKey("order-service")
	const node = "/services/order-service/10.2.0.7:20880"
	if _, err := e.c.Create(node, []byte(java32), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "add notified", func() bool { return rec.count(key) >= 1 })
	waitFor(t, "added", func() bool { got, _ := w.AppInstances("order-service"); return len(got) == 1 })
	n := rec.count(key)
	if _, err := e.c.Set(node, []byte(java32), -1); err != nil { // same data
		t.Fatal(err)
	}
	changed := []byte(`{"name":"order-service","address":"10.2.0.7","port":20880,"payload":{"metadata":{"dubbo.metadata.revision":"r2"}}}`)
	if _, err := e.c.Set(node, changed, -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "update seen", func() bool {
		got, _ := w.AppInstances("order-service")
		return len(got) == 1 && got[0].Metadata["dubbo.metadata.revision"] == "r2"
	})
	waitFor(t, "update notified", func() bool { return rec.count(key) >= n+1 })
	if c := rec.count(key); c != n+1 {
		t.Fatalf("%d notifications for one real change (the same-data write must not notify)", c-n)
	}
	del(t, e.c, node)
	waitFor(t, "removal notified", func() bool { return rec.count(key) >= n+2 })
	if got, _ := w.AppInstances("order-service"); len(got) != 0 {
		t.Fatalf("instances after removal: %+v", got)
	}
}

// TestMappingNodes: /dubbo/mapping/{interface} nodes are read (their data),
// each change delivers MappingKey(iface), and the root listing still skips
// the mapping child (no service "mapping").
func TestMappingNodes(t *testing.T) {
	e := newEnv(t)
	mkdirs(t, e.c, "/dubbo/mapping")
	const iface = "org.apache.dubbo.demo.DemoService"
	p := "/dubbo/mapping/" + iface
	if _, err := e.c.Create(p, []byte("demo-provider"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	w := e.watcher(t, nil)
	rec := record(t, w, nil)
	waitFor(t, "mapping read", func() bool { d, ok := w.Mapping(iface); return ok && d == "demo-provider" })
	if got := w.Mappings(); len(got) != 1 || got[0] != iface {
		t.Fatalf("Mappings() = %v", got)
	}
	if _, err := e.c.Set(p, []byte("demo-provider,app2"), -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mapping updated", func() bool { d, _ := w.Mapping(iface); return d == "demo-provider,app2" })
	waitFor(t, "change notified", func() bool { return rec.count(MappingKey(iface)) >= 1 })
	n := rec.count(MappingKey(iface))
	del(t, e.c, p)
	waitFor(t, "mapping gone", func() bool { _, ok := w.Mapping(iface); return !ok })
	waitFor(t, "removal notified", func() bool { return rec.count(MappingKey(iface)) > n })
	if _, ok := w.Snapshot("mapping"); ok || len(w.Services()) != 0 {
		t.Fatalf("mapping listed as a service: %v", w.Services())
	}
}

// TestAppsSyncedAfterFirstRead: the application tree is synced once every
// app's first listing of the session has been read; an instance node
// created later, whose data is not read yet, leaves it synced (it was never
// in the view, so nothing is removed for it); a new session needs a full
// read again.
func TestAppsSyncedAfterFirstRead(t *testing.T) {
	w := &Watcher{appPath: "/services", gen: 1, appRootGen: 1, apps: map[string]*appState{}}
	a := &appState{instances: map[string]AppInstance{}, listGen: 1, unread: map[string]bool{"10.0.0.1:20880": true}}
	w.apps["order"] = a
	if w.appsSyncedLocked() {
		t.Fatal("synced before the first listing was read")
	}
	delete(a.unread, "10.0.0.1:20880")
	a.instances["10.0.0.1:20880"] = AppInstance{}
	w.noteReadLocked(a)
	if !w.appsSyncedLocked() {
		t.Fatal("not synced after the first listing was read")
	}
	a.unread["10.0.0.2:20880"] = true // created later in the session
	w.noteReadLocked(a)
	if !w.appsSyncedLocked() {
		t.Fatal("a new instance node made the view untrusted")
	}
	w.gen, w.appRootGen, a.listGen = 2, 2, 2 // a new session, relisted
	w.noteReadLocked(a)
	if w.appsSyncedLocked() {
		t.Fatal("synced in a new session with an unread child")
	}
	delete(a.unread, "10.0.0.2:20880")
	w.noteReadLocked(a)
	if !w.appsSyncedLocked() {
		t.Fatal("not synced after the new session's listing was read")
	}
}
