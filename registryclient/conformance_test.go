package registryclient

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ferrysync/ferry/wire"
)

// Every request the client sends is a Nacos 2.x type with the fields the
// Nacos server reads (api/.../naming/remote/request/*.java,
// AbstractNamingRequest: namespace, serviceName, groupName; every body has
// module). FerryBatchBeatRequest goes only to a server that announced it.
func TestRequestsConformToNacos(t *testing.T) {
	f := startFake(t, true)
	dir := t.TempDir()
	cfg := testConfig(t, f.addr)
	cfg.CacheDir = dir
	c := startClient(t, cfg)
	ctx := ctxT(t, 10*time.Second)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Register(ctx, demo, Instance{IP: "10.0.0.1", Port: 1, Metadata: map[string]string{"a": "b"}}))
	must(c.BatchRegister(ctx, demo, []Instance{{IP: "10.0.0.1", Port: 1}}))
	must(c.Deregister(ctx, demo, Instance{IP: "10.0.0.1", Port: 1}))
	must(c.RegisterPersistent(ctx, demo, Instance{IP: "10.0.0.1", Port: 1}))
	must(c.DeregisterPersistent(ctx, demo, Instance{IP: "10.0.0.1", Port: 1}))
	_, err := c.Query(ctx, demo, "", true)
	must(err)
	_, _, err = c.ListServices(ctx, "", "", 1, 10)
	must(err)
	must(c.Subscribe(ctx, demo, nil))
	must(c.Unsubscribe(ctx, demo))
	must(c.Keep(ctx, demo, []Instance{{IP: "10.0.0.2", Port: 2}}))
	c.beatOnce(ctx)

	nacos := map[string][]string{
		wire.TypeServerCheckRequest:        {"module"},
		wire.TypeConnectionSetupRequest:    {"module", "clientVersion", "tenant", "labels"},
		wire.TypeHealthCheckRequest:        {"module"},
		wire.TypeInstanceRequest:           {"module", "namespace", "serviceName", "groupName", "type", "instance"},
		wire.TypeBatchInstanceRequest:      {"module", "namespace", "serviceName", "groupName", "type", "instances"},
		wire.TypePersistentInstanceRequest: {"module", "namespace", "serviceName", "groupName", "type", "instance"},
		wire.TypeServiceQueryRequest:       {"module", "namespace", "serviceName", "groupName", "cluster", "healthyOnly", "udpPort"},
		wire.TypeServiceListRequest:        {"module", "namespace", "groupName", "pageNo", "pageSize", "selector"},
		wire.TypeSubscribeServiceRequest:   {"module", "namespace", "serviceName", "groupName", "subscribe", "clusters"},
		wire.TypeFerryBatchBeatRequest:     {"module", "registerIfUnknown", "beats"}, // Ferry only, after the capability check
	}
	instFields := []string{"ip", "port", "weight", "healthy", "enabled", "ephemeral", "clusterName", "metadata"}
	f.mu.Lock()
	bodies := append([]rawBody(nil), f.bodies...)
	f.mu.Unlock()
	seen := map[string]bool{}
	for _, b := range bodies {
		want, ok := nacos[b.typ]
		if !ok {
			t.Errorf("client sent %s, not a Nacos request type", b.typ)
			continue
		}
		seen[b.typ] = true
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b.body, &m); err != nil {
			t.Fatalf("%s: %v", b.typ, err)
		}
		for _, k := range want {
			if _, ok := m[k]; !ok {
				t.Errorf("%s lacks %q: %s", b.typ, k, b.body)
			}
		}
		var module string
		_ = json.Unmarshal(m["module"], &module)
		if wantMod := map[bool]string{true: "internal", false: "naming"}[b.typ == wire.TypeServerCheckRequest || b.typ == wire.TypeConnectionSetupRequest || b.typ == wire.TypeHealthCheckRequest]; module != wantMod {
			t.Errorf("%s module %q", b.typ, module)
		}
		if raw, ok := m["instance"]; ok {
			var inst map[string]json.RawMessage
			_ = json.Unmarshal(raw, &inst)
			for _, k := range instFields {
				if _, ok := inst[k]; !ok {
					t.Errorf("%s instance lacks %q", b.typ, k)
				}
			}
		}
		if b.typ == wire.TypeConnectionSetupRequest {
			var labels map[string]string
			_ = json.Unmarshal(m["labels"], &labels)
			if labels["module"] != "naming" || labels["source"] != "sdk" {
				t.Errorf("setup labels %v", labels)
			}
		}
	}
	for typ := range nacos {
		if !seen[typ] {
			t.Errorf("%s never sent", typ)
		}
	}
}
