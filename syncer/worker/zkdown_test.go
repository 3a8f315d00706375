package worker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestWorkerZooKeeperDown: with ZooKeeper stopped for 60 s (four times the
// registry's 15 s unhealthy threshold for beat-kept instances, twice their
// 30 s removal, and past the worker's 30 s session timeout) nothing is
// removed and beats go on, so every instance stays healthy; after the
// restart the worker is synced again and everything is still there.
func TestWorkerZooKeeperDown(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps ZooKeeper down for 60 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The seeding session outlives the outage, so its nodes stay.
	lcfg, st := newStack(ctx, t, 3, 2, 60*time.Second)
	zk, loader, regAddr := st.zk, st.loader, st.regAddr
	wcfg := st.workerConfig(t, "")
	w, err := Start(ctx, wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())

	healthy := func() int {
		n := 0
		for i := 0; i < lcfg.Services; i++ {
			resp, err := http.Get("http://" + regAddr + "/nacos/v1/ns/instance/list?" +
				url.Values{"serviceName": {"providers:" + loader.Interface(i) + "::"}, "healthyOnly": {"true"}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			var a struct{ Hosts []json.RawMessage }
			_ = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			n += len(a.Hosts)
		}
		return n
	}
	want := lcfg.Services * lcfg.Instances
	waitFor(t, "every provider registered", 60*time.Second, func() bool { return healthy() == want })

	if err := zk.Stop(); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); {
		if n := healthy(); n != want {
			t.Fatalf("with ZooKeeper down the registry lists %d healthy instances, want %d", n, want)
		}
		time.Sleep(500 * time.Millisecond) // sampling interval, not synchronisation
	}
	if err := zk.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker synced with ZooKeeper again", 60*time.Second, func() bool { return w.Status().ZKSynced })
	if n := healthy(); n != want {
		t.Fatalf("after ZooKeeper came back the registry lists %d healthy instances, want %d", n, want)
	}
}
