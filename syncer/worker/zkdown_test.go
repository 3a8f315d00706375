package worker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
)

// TestWorkerZooKeeperDown: with ZooKeeper stopped for 20 s (past the
// registry's 15 s unhealthy threshold for beat-kept instances) nothing is
// removed and beats go on, so every instance stays healthy; after the
// restart the worker is synced again and everything is still there.
func TestWorkerZooKeeperDown(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps ZooKeeper down for 20 s")
	}
	zk := zkserver.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zk.Addr()}
	lcfg.Services, lcfg.Instances = 3, 2
	lcfg.WithNacosShare, lcfg.VersionShare, lcfg.GroupShare = 0, 0, 0
	lcfg.SessionTimeout = 60 * time.Second // the seeded nodes outlive the outage
	loader, err := zkload.Connect(ctx, lcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer loader.Close()
	if _, err := loader.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	rcfg := registryserver.DefaultConfig()
	rcfg.Port = 0
	rcfg.DataDir = t.TempDir()
	reg, err := registryserver.Open(rcfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	regAddr := reg.HTTPAddr().String()

	wcfg := DefaultConfig()
	wcfg.DB = "sqlite://" + filepath.Join(t.TempDir(), "ferry.db")
	wcfg.ZK = []string{zk.Addr()}
	wcfg.Registry = []string{regAddr}
	wcfg.HTTP = ""
	wcfg.WorkerID = "w1"
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
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		if n := healthy(); n != want {
			t.Fatalf("with ZooKeeper down the registry lists %d healthy instances, want %d", n, want)
		}
		time.Sleep(200 * time.Millisecond) // sampling interval, not synchronisation
	}
	if err := zk.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker synced with ZooKeeper again", 60*time.Second, func() bool { return w.Status().ZKSynced })
	if n := healthy(); n != want {
		t.Fatalf("after ZooKeeper came back the registry lists %d healthy instances, want %d", n, want)
	}
}
