package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/ferrysync/ferry/registryclient"
)

// healthyMarkers maps every healthy instance of the services (as a
// consumer asking for healthy instances only sees them, through the HTTP
// open API) to the worker its marker names.
func healthyMarkers(regAddr string, services []string) (map[string]string, error) {
	out := map[string]string{}
	for _, svc := range services {
		resp, err := http.Get("http://" + regAddr + "/nacos/v1/ns/instance/list?" +
			url.Values{"serviceName": {svc}, "healthyOnly": {"true"}}.Encode())
		if err != nil {
			return nil, err
		}
		var a struct {
			Hosts []struct {
				IP       string            `json:"ip"`
				Port     int               `json:"port"`
				Healthy  bool              `json:"healthy"`
				Metadata map[string]string `json:"metadata"`
			} `json:"hosts"`
		}
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		for _, h := range a.Hosts {
			if h.Healthy {
				out[svc+"/"+net.JoinHostPort(h.IP, strconv.Itoa(h.Port))] = h.Metadata["ferry.worker"]
			}
		}
	}
	return out, nil
}

// TestWorkerCutFromRegistryGivesShardsUp: two workers on one MariaDB; one
// loses its registry connection (a cuttable proxy on its gRPC link) but not
// the database. After RegistryGiveUp it hands its shards to the other,
// which beats its instances before any turns unhealthy: a healthy-only
// view sampled every 100 ms misses nothing through the registry's 15 s
// unhealthy mark. Healed, the worker takes its share again.
func TestWorkerCutFromRegistryGivesShardsUp(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 40 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := mysqlserver.ForTest(t)
	dsn, err := db.CreateDatabase(ctx, "partition")
	if err != nil {
		t.Fatal(err)
	}
	const services, instances = 10, 3
	_, stk := newStack(ctx, t, services, instances, 0)
	names := make([]string, services)
	for i := range names {
		names[i] = nacosName(stk.loader.Interface(i))
	}
	srv, err := registryclient.ParseServer(stk.regAddr)
	if err != nil {
		t.Fatal(err)
	}
	px, err := zkserver.NewProxy(srv.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()

	start := func(id string, dial func(ctx context.Context, addr string) (net.Conn, error)) *Worker {
		cfg := stk.workerConfig(t, "")
		cfg.DB, cfg.WorkerID, cfg.RegistryDialer = dsn, id, dial
		w, err := Start(ctx, cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			w.Stop(sctx)
		})
		return w
	}
	cutDial := func(ctx context.Context, addr string) (net.Conn, error) {
		if addr == srv.GRPCAddr() {
			addr = px.Addr()
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	w1 := start("w1", cutDial)
	w2 := start("w2", nil)
	want := services * instances
	bothMarkers := func() bool {
		h, err := healthyMarkers(stk.regAddr, names)
		seen := map[string]bool{}
		for _, w := range h {
			seen[w] = true
		}
		return err == nil && len(h) == want && seen["w1"] && seen["w2"] &&
			w1.Status().OwnedKeys+w2.Status().OwnedKeys == 256
	}
	waitFor(t, "both workers syncing their shares", 60*time.Second, bothMarkers)

	// Sample every 100 ms: every instance stays healthy.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var misses []string
	samples := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case at := <-tk.C:
				h, err := healthyMarkers(stk.regAddr, names)
				mu.Lock()
				samples++
				if err == nil && len(h) != want && len(misses) < 20 {
					misses = append(misses, fmt.Sprintf("%s: %d of %d healthy", at.Format("15:04:05.000"), len(h), want))
				}
				mu.Unlock()
			}
		}
	}()

	px.Cut()
	cut := time.Now()
	// The sampler is what asserts the handover beat the unhealthy mark;
	// this budget only bounds a failure.
	waitFor(t, "w1 to give every shard to w2 and w2 to beat every instance", 60*time.Second, func() bool {
		h, err := healthyMarkers(stk.regAddr, names)
		if err != nil || len(h) != want || !w1.Status().Draining || w2.Status().OwnedKeys != 256 {
			return false
		}
		for _, w := range h {
			if w != "w2" {
				return false
			}
		}
		return true
	})
	t.Logf("w2 beats every instance %v after the cut", time.Since(cut).Round(time.Millisecond))
	// Past the registry's 15 s unhealthy mark for w1's last beats.
	for time.Since(cut) < 20*time.Second {
		time.Sleep(200 * time.Millisecond) // observation window for the sampler, not synchronisation
	}
	px.Heal()
	waitFor(t, "w1 to take its share again", 60*time.Second, func() bool { return !w1.Status().Draining && bothMarkers() })
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d samples at 100 ms", samples)
	for _, m := range misses {
		t.Error(m)
	}
}

// TestWorkerTaskStatusInStore: each worker writes its view of every task
// back to the store, so either worker's status shows both workers' share
// of the task (shards and counts adding up to the whole).
func TestWorkerTaskStatusInStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := mysqlserver.ForTest(t)
	dsn, err := db.CreateDatabase(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	const services, instances = 6, 2
	_, stk := newStack(ctx, t, services, instances, 0)
	var ws []*Worker
	for _, id := range []string{"w1", "w2"} {
		cfg := stk.workerConfig(t, "")
		cfg.DB, cfg.WorkerID, cfg.TaskPoll = dsn, id, 200*time.Millisecond
		w, err := Start(ctx, cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop(context.Background())
		ws = append(ws, w)
	}
	var diag string
	for _, w := range ws {
		waitFor(t, "both workers' shares in "+w.cfg.WorkerID+"'s status", 60*time.Second, func() bool {
			st := w.Status()
			if len(st.Tasks) != 1 {
				return false
			}
			shards, registered := 0, 0
			seen := map[string]bool{}
			for _, r := range st.Tasks[0].Workers {
				seen[r.WorkerID] = r.Running && r.OwnedShards > 0
				shards += r.OwnedShards
				registered += r.Registered
			}
			diag = fmt.Sprintf("%+v", st.Tasks[0].Workers)
			return seen["w1"] && seen["w2"] && shards == 256 && registered == services*instances
		})
	}
	t.Logf("task status rows: %s", diag)
}
