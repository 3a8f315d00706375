package worker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/ferrysync/ferry/syncer"
)

func TestDiffName(t *testing.T) {
	m := syncer.Marker{Cluster: "zk-1", Worker: "w1"}
	inst := func(addr string, md map[string]string) syncer.Instance {
		in := syncer.Instance{IP: addr, Port: 1, Weight: 1, Enabled: true, Healthy: true, Ephemeral: true,
			Metadata: map[string]string{syncer.MetaSource: m.Source(), syncer.MetaWorker: "w1"}}
		for k, v := range md {
			in.Metadata[k] = v
		}
		return in
	}
	zk := map[string]zkSide{
		"10.0.0.1:1": {inst: inst("10.0.0.1", map[string]string{"v": "1"})},                             // same (other owner)
		"10.0.0.2:1": {inst: inst("10.0.0.2", nil)},                                                     // missing
		"10.0.0.3:1": {inst: inst("10.0.0.3", map[string]string{"v": "1"})},                             // differs
		"10.0.0.4:1": {inst: inst("10.0.0.4", nil), skip: syncer.SkipWithNacos},                         // native
		"10.0.0.5:1": {inst: inst("10.0.0.5", nil), skip: syncer.SkipAppExcluded},                       // skipped, absent: fine
		"10.0.0.7:1": {inst: inst("10.0.0.7", map[string]string{"x": "1"}), skip: syncer.SkipAppNative}, // skipped, still ours
	}
	other := inst("10.0.0.1", map[string]string{"v": "1"})
	other.Metadata[syncer.MetaWorker] = "w2"
	changed := inst("10.0.0.3", map[string]string{"v": "2", "extra": "y"})
	changed.Weight = 2
	foreign := syncer.Instance{IP: "10.0.0.6", Port: 1, Weight: 1, Enabled: true, Metadata: map[string]string{}}
	native := syncer.Instance{IP: "10.0.0.4", Port: 1, Weight: 1, Enabled: true, Metadata: map[string]string{}}
	d := diffName("svc", zk, []syncer.Instance{other, changed, foreign, native, inst("10.0.0.7", nil)}, m)
	addrs := func(es []DiffEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Addr)
		}
		return out
	}
	if d.Same != 1 {
		t.Errorf("same = %d, want 1 (the worker id differs by design)", d.Same)
	}
	for what, c := range map[string]struct{ got, want []string }{
		"missing": {addrs(d.Missing), []string{"10.0.0.2:1"}},
		"extra":   {addrs(d.Extra), []string{"10.0.0.6:1", "10.0.0.7:1"}},
		"differs": {addrs(d.Differs), []string{"10.0.0.3:1"}},
		"native":  {addrs(d.Native), []string{"10.0.0.4:1"}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", what, c.got, c.want)
		}
	}
	if len(d.Differs) == 1 && !reflect.DeepEqual(d.Differs[0].Keys, []string{"extra", "v", "weight"}) {
		t.Errorf("differing keys = %v, want extra, v, weight", d.Differs[0].Keys)
	}
	if d.Extra[0].Ours || !d.Extra[1].Ours {
		t.Errorf("extra ours = %v, %v: want the foreign one not ours, the leftover ours", d.Extra[0].Ours, d.Extra[1].Ours)
	}
}

// TestWorkerServiceDiff: against real ZooKeeper and a registry node, the
// diff of a synced service agrees; an instance registered by someone else
// is extra (not ours); an instance whose weight an operator overrode
// differs on "weight"; an unknown task is ErrNotRunning.
func TestWorkerServiceDiff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, stk := newStack(ctx, t, 2, 2, 0)
	w, err := Start(ctx, stk.workerConfig(t, ""), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	name := nacosName(stk.loader.Interface(0))
	waitFor(t, "service 0 synced", 90*time.Second, func() bool { return len(hosts(t, stk.regAddr, name)) == 2 })
	taskID := w.Status().Tasks[0].ID
	diff := func(svc string) NameDiff {
		t.Helper()
		d, err := w.ServiceDiff(ctx, taskID, svc)
		if err != nil {
			t.Fatal(err)
		}
		if d.ZKService != stk.loader.Interface(0) || len(d.Names) != 1 || d.Names[0].Service != name {
			t.Fatalf("diff of %s = %+v, want one registry name %s", svc, d, name)
		}
		return d.Names[0]
	}
	for _, svc := range []string{stk.loader.Interface(0), name} {
		if d := diff(svc); d.Same != 2 || len(d.Missing)+len(d.Extra)+len(d.Differs)+len(d.Native) != 0 {
			t.Fatalf("diff of synced %s = %+v, want 2 the same and nothing else", svc, d)
		}
	}
	call := func(method string, q url.Values) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+stk.regAddr+"/nacos/v1/ns/instance?"+q.Encode(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s instance %v: %d %s", method, q, resp.StatusCode, body)
		}
	}
	call("POST", url.Values{"serviceName": {name}, "ip": {"10.9.9.9"}, "port": {"1234"}})
	ip := stk.loader.Host(0, 0)
	call("PATCH", url.Values{"serviceName": {name}, "ip": {ip}, "port": {"20880"}, "weight": {"2"}})
	waitFor(t, "the foreign instance extra and the overridden one differing", 30*time.Second, func() bool {
		d := diff(name)
		return d.Same == 1 && len(d.Extra) == 1 && d.Extra[0].Addr == "10.9.9.9:1234" && !d.Extra[0].Ours &&
			len(d.Differs) == 1 && d.Differs[0].Addr == ip+":20880" && reflect.DeepEqual(d.Differs[0].Keys, []string{"weight"})
	})
	if _, err := w.ServiceDiff(ctx, 999, name); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("diff of an unknown task: %v, want ErrNotRunning", err)
	}
}
