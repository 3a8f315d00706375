package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/store"
)

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func probe(t *testing.T, h *harness, kind string, id int64) ProbeResult {
	t.Helper()
	r := h.want(h.as(store.RoleAdmin, "POST", fmt.Sprintf("/api/v1/%s/%d/test", kind, id), nil), 200, "")
	var p ProbeResult
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// "Test connection" lists a real ZooKeeper's Dubbo root, and reports the
// client's error verbatim for an unreachable server or a missing root.
func TestProbeZooKeeper(t *testing.T) {
	h := newHarness(t, nil)
	zs := zkserver.ForTest(t)
	conn, _, err := zk.Connect([]string{zs.Addr()}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, p := range []string{"/dubbo", "/dubbo/com.a.A", "/dubbo/com.b.B"} {
		if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	good := &store.ZKCluster{Name: "good", ConnectString: zs.Addr()}
	down := &store.ZKCluster{Name: "down", ConnectString: closedPort(t)}
	noRoot := &store.ZKCluster{Name: "no-root", ConnectString: zs.Addr(), Root: "/nowhere"}
	for _, c := range []*store.ZKCluster{good, down, noRoot} {
		if err := h.st.CreateZKCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if p := probe(t, h, "zk-clusters", good.ID); !p.OK || strings.Join(p.Children, ",") != "com.a.A,com.b.B" {
		t.Fatalf("good: %+v", p)
	}
	if p := probe(t, h, "zk-clusters", down.ID); p.OK || !strings.Contains(p.Error, "no ZooKeeper session with "+down.ConnectString) {
		t.Fatalf("down: %+v", p)
	}
	if p := probe(t, h, "zk-clusters", noRoot.ID); p.OK || !strings.Contains(p.Error, "list /nowhere: zk: node does not exist") {
		t.Fatalf("no root: %+v", p)
	}
}

// "Test connection" lists a real bundled registry's services, and reports
// the error of an unreachable one.
func TestProbeRegistry(t *testing.T) {
	h := newHarness(t, nil)
	rcfg := registryserver.DefaultConfig()
	rcfg.Port = 0
	rcfg.DataDir = t.TempDir()
	reg, err := registryserver.Open(rcfg, testlog.New(t, slog.LevelWarn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	ctx := context.Background()
	server := fmt.Sprintf("%s/%d", reg.HTTPAddr().String(), reg.GRPCAddr().(*net.TCPAddr).Port)
	good := &store.RegistryCluster{Name: "good", Kind: store.RegistryBundled, ServerList: []string{server}}
	down := &store.RegistryCluster{Name: "down", Kind: store.RegistryBundled, ServerList: []string{closedPort(t) + "/" + strings.Split(closedPort(t), ":")[1]}}
	for _, c := range []*store.RegistryCluster{good, down} {
		if err := h.st.CreateRegistryCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if p := probe(t, h, "registry-clusters", good.ID); !p.OK || p.Error != "" {
		t.Fatalf("good: %+v", p)
	}
	if p := probe(t, h, "registry-clusters", down.ID); p.OK || p.Error == "" {
		t.Fatalf("down: %+v", p)
	} else {
		t.Logf("unreachable registry: %s", p.Error)
	}
}
