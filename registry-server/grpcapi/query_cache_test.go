package grpcapi

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// describeHosts renders hosts as "ip:port[/c=cluster][/w=weight][/unhealthy][/k=v…]",
// sorted, comma-joined: what a test expects to see.
func describeHosts(hosts []wire.Instance) string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		d := h.IP + ":" + strconv.Itoa(h.Port)
		if h.ClusterName != naming.DefaultCluster {
			d += "/c=" + h.ClusterName
		}
		if h.Weight != 1 {
			d += "/w=" + strconv.FormatFloat(h.Weight, 'g', -1, 64)
		}
		if !h.Healthy {
			d += "/unhealthy"
		}
		keys := make([]string, 0, len(h.Metadata))
		for k := range h.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			d += "/" + k + "=" + h.Metadata[k]
		}
		out = append(out, d)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// filterHosts derives the expected answer of a narrower query from the
// expected full answer: healthy ones only, or those of cluster C1.
func filterHosts(all string, keep func(d string) bool) string {
	if all == "" {
		return ""
	}
	var out []string
	for _, d := range strings.Split(all, ",") {
		if keep(d) {
			out = append(out, d)
		}
	}
	return strings.Join(out, ",")
}

// TestQueryAfterEveryMutation proves that a ServiceQueryRequest answered
// from the per-snapshot encoded cache sees every kind of change at once:
// each step first queries (twice, so the cached answer exists and is
// reused), then mutates, then queries the three shapes (all, healthyOnly,
// cluster C1) once and expects the new state exactly. lastRefTime must
// increase strictly over all answers.
func TestQueryAfterEveryMutation(t *testing.T) {
	s, reg := startServer(t, nil)
	a := dialRaw(t, s.Addr().String(), true)
	b := dialRaw(t, s.Addr().String(), true)
	q := dialRaw(t, s.Addr().String(), true)
	mut := naming.ServiceKey{Name: "mut"}
	pmut := naming.ServiceKey{Name: "pmut"}
	var lastRef int64
	query := func(svc, cluster string, healthyOnly bool) (string, bool) {
		t.Helper()
		r := q.mustCall(&wire.ServiceQueryRequest{NamingHeader: nh(svc), Cluster: cluster, HealthyOnly: healthyOnly})
		qr, ok := r.(*wire.QueryServiceResponse)
		if !ok || !qr.OK() || !qr.Success || qr.ServiceInfo.Name != svc || qr.ServiceInfo.Clusters != cluster || !qr.ServiceInfo.Valid {
			t.Fatalf("query %s %q %v: %T %+v", svc, cluster, healthyOnly, r, r)
		}
		if qr.ServiceInfo.LastRefTime <= lastRef {
			t.Fatalf("lastRefTime %d after %d", qr.ServiceInfo.LastRefTime, lastRef)
		}
		lastRef = qr.ServiceInfo.LastRefTime
		return describeHosts(qr.ServiceInfo.Hosts), qr.ServiceInfo.ReachProtectionThreshold
	}
	yes, no := true, false
	five := 5.0
	inC1 := func(d string) bool { return strings.Contains(d, "/c=C1") }
	healthy := func(d string) bool { return !strings.Contains(d, "/unhealthy") }
	c1 := winst("10.0.0.2", 1)
	c1.ClusterName = "C1"
	heavy := winst("10.0.0.1", 1)
	heavy.Weight = 2

	steps := []struct {
		name    string
		svc     string
		mutate  func(t *testing.T)
		want    string // the full answer; healthyOnly and C1 are derived
		protect bool
	}{
		{"register", "mut", func(t *testing.T) {
			a.mustCall(&wire.InstanceRequest{NamingHeader: nh("mut"), Type: wire.RegisterInstance, Instance: winst("10.0.0.1", 1)})
		}, "10.0.0.1:1", false},
		{"re-register replaces", "mut", func(t *testing.T) {
			a.mustCall(&wire.InstanceRequest{NamingHeader: nh("mut"), Type: wire.RegisterInstance, Instance: heavy})
		}, "10.0.0.1:1/w=2", false},
		{"batch register", "mut", func(t *testing.T) {
			b.mustCall(&wire.BatchInstanceRequest{NamingHeader: nh("mut"), Type: wire.BatchRegisterInstance,
				Instances: []wire.Instance{c1, winst("10.0.0.3", 1)}})
		}, "10.0.0.1:1/w=2,10.0.0.2:1/c=C1,10.0.0.3:1", false},
		{"batch register replaces the batch", "mut", func(t *testing.T) {
			b.mustCall(&wire.BatchInstanceRequest{NamingHeader: nh("mut"), Type: wire.BatchRegisterInstance,
				Instances: []wire.Instance{winst("10.0.0.3", 1)}})
		}, "10.0.0.1:1/w=2,10.0.0.3:1", false},
		{"deregister", "mut", func(t *testing.T) {
			a.mustCall(&wire.InstanceRequest{NamingHeader: nh("mut"), Type: wire.DeregisterInstance, Instance: heavy})
		}, "10.0.0.3:1", false},
		{"beat registers a beat-kept instance", "mut", func(t *testing.T) {
			in := winst("10.0.0.4", 1)
			in.ClusterName = "C1"
			a.mustCall(&wire.FerryBatchBeatRequest{RegisterIfUnknown: true, Beats: []wire.BeatItem{{ServiceName: "mut", Instance: in}}})
		}, "10.0.0.3:1,10.0.0.4:1/c=C1", false},
		{"expiry: unhealthy after the beat timeout", "mut", func(t *testing.T) {
			reg.Expire(time.Now().Add(16 * time.Second))
		}, "10.0.0.3:1,10.0.0.4:1/c=C1/unhealthy", false},
		{"beat: healthy again", "mut", func(t *testing.T) {
			a.mustCall(&wire.FerryBatchBeatRequest{Beats: []wire.BeatItem{{ServiceName: "mut", IP: "10.0.0.4", Port: 1, Cluster: "C1"}}})
		}, "10.0.0.3:1,10.0.0.4:1/c=C1", false},
		{"override: disabled", "mut", func(t *testing.T) {
			reg.SetOverrides(mut, []naming.Override{{Addr: naming.Addr{IP: "10.0.0.3", Port: 1}, Enabled: &no}})
		}, "10.0.0.4:1/c=C1", false},
		{"override: weight and metadata (and enabled back)", "mut", func(t *testing.T) {
			reg.SetOverrides(mut, []naming.Override{{Addr: naming.Addr{IP: "10.0.0.3", Port: 1}, Enabled: &yes},
				{Addr: naming.Addr{IP: "10.0.0.4", Port: 1, Cluster: "C1"}, Weight: &five, Metadata: map[string]string{"k": "v"}}})
		}, "10.0.0.3:1,10.0.0.4:1/c=C1/w=5/k=v", false},
		{"expiry: unhealthy again", "mut", func(t *testing.T) {
			reg.Expire(time.Now().Add(16 * time.Second))
		}, "10.0.0.3:1,10.0.0.4:1/c=C1/w=5/unhealthy/k=v", false},
		{"service metadata: protect threshold reached", "mut", func(t *testing.T) {
			reg.SetServiceMeta(mut, naming.ServiceMeta{ProtectThreshold: 0.9, Ephemeral: true}) // 1 of 2 healthy
		}, "10.0.0.3:1,10.0.0.4:1/c=C1/w=5/k=v", true},
		{"service metadata removed", "mut", func(t *testing.T) {
			reg.DeleteServiceMeta(mut)
		}, "10.0.0.3:1,10.0.0.4:1/c=C1/w=5/unhealthy/k=v", false},
		{"expiry: removed after the delete timeout", "mut", func(t *testing.T) {
			reg.Expire(time.Now().Add(31 * time.Second))
		}, "10.0.0.3:1", false},
		{"beat registers another beat-kept instance", "mut", func(t *testing.T) {
			a.mustCall(&wire.FerryBatchBeatRequest{RegisterIfUnknown: true, Beats: []wire.BeatItem{{ServiceName: "mut", Instance: winst("10.0.0.5", 1)}}})
		}, "10.0.0.3:1,10.0.0.5:1", false},
		{"beat-kept instance deregistered (HTTP)", "mut", func(t *testing.T) {
			if err := reg.DeregisterBeatKept(mut, naming.Addr{IP: "10.0.0.5", Port: 1}); err != nil {
				t.Fatal(err)
			}
		}, "10.0.0.3:1", false},
		{"connection closed", "mut", func(t *testing.T) {
			b.cc.Close()
			waitFor(t, "b's instances dropped", func() bool { return reg.Stats().ConnectionInstances == 0 })
		}, "", false},
		{"persistent instances set (Raft)", "pmut", func(t *testing.T) {
			in := naming.Instance{IP: "10.0.1.1", Port: 80, Weight: 1, Healthy: true, Enabled: true}
			reg.SetPersistent(pmut, []naming.Instance{in})
		}, "10.0.1.1:80", false},
		{"prober: unhealthy", "pmut", func(t *testing.T) {
			reg.SetHealth(pmut, naming.Addr{IP: "10.0.1.1", Port: 80}, false)
		}, "10.0.1.1:80/unhealthy", false},
		{"persistent instance added", "pmut", func(t *testing.T) {
			reg.SetPersistent(pmut, []naming.Instance{{IP: "10.0.1.1", Port: 80, Weight: 1, Healthy: true, Enabled: true},
				{IP: "10.0.1.2", Port: 80, Weight: 1, Healthy: true, Enabled: true, Cluster: "C1"}})
		}, "10.0.1.1:80/unhealthy,10.0.1.2:80/c=C1", false},
		{"prober: healthy", "pmut", func(t *testing.T) {
			reg.SetHealth(pmut, naming.Addr{IP: "10.0.1.1", Port: 80}, true)
		}, "10.0.1.1:80,10.0.1.2:80/c=C1", false},
	}
	for _, st := range steps {
		// Warm the cache with the previous state.
		for i := 0; i < 2; i++ {
			query(st.svc, "", false)
			query(st.svc, "", true)
			query(st.svc, "C1", false)
		}
		st.mutate(t)
		wantHealthy := filterHosts(st.want, healthy)
		wantC1 := filterHosts(st.want, inC1)
		for _, c := range []struct {
			cluster     string
			healthyOnly bool
			want        string
		}{{"", false, st.want}, {"", true, wantHealthy}, {"C1", false, wantC1}} {
			got, prot := query(st.svc, c.cluster, c.healthyOnly)
			if got != c.want || prot != (st.protect && c.want != "") {
				t.Errorf("%s: query cluster %q healthyOnly %v = %q (protection %v), want %q (protection %v)",
					st.name, c.cluster, c.healthyOnly, got, prot, c.want, st.protect)
			}
		}
	}
}

// TestQueryEncodedEqualsDirect: the cached answer is byte for byte the
// answer encoded without the cache (lastRefTime and requestId aside).
func TestQueryEncodedEqualsDirect(t *testing.T) {
	s, reg := startServer(t, nil)
	c := dialRaw(t, s.Addr().String(), true)
	in := winst("10.0.0.1", 1)
	in.Metadata = map[string]string{"side": "provider", "x": "<&>\"é"}
	c.mustCall(&wire.BatchInstanceRequest{NamingHeader: nh("eq"), Type: wire.BatchRegisterInstance, Instances: []wire.Instance{in, winst("10.0.0.2", 2)}})
	for _, cluster := range []string{"", "DEFAULT", "DEFAULT,C1", "none"} {
		p, err := wire.Encode(&wire.ServiceQueryRequest{NamingHeader: nh("eq"), Cluster: cluster})
		if err != nil {
			t.Fatal(err)
		}
		p.Body.Value = []byte(strings.Replace(string(p.Body.Value), `{`, `{"requestId":"r1",`, 1))
		out, err := c.req.Request(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		got := out.GetBody().GetValue()
		var ref int64
		if _, err := fmt.Sscanf(string(got[strings.Index(string(got), `"lastRefTime":`)+len(`"lastRefTime":`):]), "%d", &ref); err != nil {
			t.Fatal(err)
		}
		info, err := reg.Select(naming.ServiceKey{Name: "eq"}, splitClusters(cluster), false)
		if err != nil {
			t.Fatal(err)
		}
		direct := &wire.QueryServiceResponse{ResponseHeader: wire.Okay(), ServiceInfo: toWireServiceInfo(info, reg.Config())}
		direct.RequestID = "r1"
		direct.ServiceInfo.Clusters = cluster
		direct.ServiceInfo.LastRefTime = ref
		want, err := wire.Encode(direct)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want.GetBody().GetValue()) {
			t.Errorf("cluster %q:\n got: %s\nwant: %s", cluster, got, want.GetBody().GetValue())
		}
	}
}

// TestRequestMetrics: requests are counted by type and error code (cached
// children for known types), unknown types under "unknown".
func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	nreg := naming.NewRegistry(naming.DefaultConfig(), nil)
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg, nreg, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(t.Context()) })
	c := dialRaw(t, s.Addr().String(), true)
	for i := 0; i < 3; i++ {
		c.mustCall(&wire.ServiceQueryRequest{NamingHeader: nh("m")})
	}
	c.mustCall(&wire.ServiceQueryRequest{NamingHeader: nh("")}) // invalid: errorCode 400
	for i := 0; i < 2; i++ {
		if _, err := c.req.Request(t.Context(), &wire.Payload{Metadata: &wire.Metadata{Type: "NoSuchRequest" + strconv.Itoa(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(typ, code string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "ferry_registry_grpc_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if l["type"] == typ && l["code"] == code {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	if n := count(wire.TypeServiceQueryRequest, "0"); n != 3 {
		t.Errorf("queries ok = %v", n)
	}
	if n := count(wire.TypeServiceQueryRequest, strconv.Itoa(wire.CodeInvalidParam)); n != 1 {
		t.Errorf("queries 400 = %v", n)
	}
	if n := count("unknown", strconv.Itoa(wire.CodeNoHandler)); n != 2 {
		t.Errorf("unknown 302 = %v", n)
	}
}
