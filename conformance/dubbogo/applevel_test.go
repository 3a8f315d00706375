//go:build !race

package dubbogo

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/protocol"
	"dubbo.apache.org/dubbo-go/v3/registry"
	"dubbo.apache.org/dubbo-go/v3/server"
	hessian "github.com/apache/dubbo-go-hessian2"

	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/syncer/worker"
)

// TestDubboGoAppLevelThroughFerry (issue 14): a dubbo-go v3.3.2 provider
// registers in ZooKeeper at both levels (registry-type all: interface
// nodes, /services/{app}/{ip:port} and /dubbo/mapping/{interface}); a
// Ferry worker syncs ZooKeeper into Ferry's registry; a consumer on
// nacos:// with registry-type service and default settings finds the
// provider through the mapping and the application instance Ferry wrote,
// and calls it (metadata-type local: the consumer asks the provider's
// MetadataService).
func TestDubboGoAppLevelThroughFerry(t *testing.T) {
	inChild(t, "TestDubboGoAppLevelThroughFerry", func() { appLevelThroughFerry(t, "ferry-dubbogo-applevel", false) })
}

// TestDubboGoAppLevelThroughFerryRemoteMetadata: the same with
// metadata-type remote: the provider's MetadataInfo goes to ZooKeeper's
// metadata report, Ferry copies it into the config service (dataId app,
// group revision) before the instance, and the consumer reads it there.
func TestDubboGoAppLevelThroughFerryRemoteMetadata(t *testing.T) {
	inChild(t, "TestDubboGoAppLevelThroughFerryRemoteMetadata", func() {
		appLevelThroughFerry(t, "ferry-dubbogo-applevel-remote", true)
	})
}

// childEnv names the scenario a child test process runs.
const childEnv = "FERRY_DUBBOGO_SCENARIO"

// inChild runs scenario in a fresh test process (this binary, only test
// name): dubbo-go keeps registries, ZooKeeper clients and the application
// in process-wide state, so a second scenario in one process talks to the
// first one's (stopped) ZooKeeper. In the child it runs scenario itself.
func inChild(t *testing.T, name string, scenario func()) {
	if os.Getenv(childEnv) == name {
		scenario()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+name)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("scenario %s in a child process: %v\n%s", name, err, tail(string(out), 80))
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func appLevelThroughFerry(t *testing.T, app string, remote bool) {
	hessian.RegisterPOJO(&GreetRequest{})
	hessian.RegisterPOJO(&GreetReply{})
	var meta []dubbo.InstanceOption
	if remote {
		meta = append(meta, dubbo.WithRemoteMetadata())
	}
	zks := zkserver.ForTest(t)
	node := openNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	wcfg := worker.DefaultConfig()
	wcfg.DB = "sqlite://" + filepath.Join(t.TempDir(), "ferry.db")
	wcfg.ZK = []string{zks.Addr()}
	wcfg.Registry = []string{node.HTTPAddr().String()}
	wcfg.HTTP = ""
	wcfg.WorkerID = "w1"
	w, err := worker.Start(ctx, wcfg, slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background()) })

	pins, err := dubbo.NewInstance(append([]dubbo.InstanceOption{dubbo.WithName(app),
		dubbo.WithRegistry(registry.WithZookeeper(), registry.WithAddress(zks.Addr()), registry.WithRegisterServiceAndInterface())}, meta...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pins.NewServer(server.WithServerProtocol(protocol.WithTriple(), protocol.WithPort(freePort(t))))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RegisterService(&Greeter{}, server.WithSerialization(constant.Hessian2Serialization)); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	t.Cleanup(scancel)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeContext(sctx) }()

	// Ferry copied the provider's application instance and its mapping.
	iface := (&Greeter{}).Reference()
	var revision string
	eventually(t, "the application instance synced into naming", func() (bool, string) {
		si, err := node.Naming().Select(naming.ServiceKey{Group: "DEFAULT_GROUP", Name: app}, nil, true)
		if err != nil || len(si.Hosts) == 0 {
			return false, fmt.Sprint(err)
		}
		md := si.Hosts[0].Metadata
		revision = md["dubbo.metadata.revision"]
		return revision != "" && md["ferry.source"] != "", fmt.Sprint(md)
	})
	if remote {
		it, err := node.ConfigService().Get(configsvc.Key{Group: revision, DataID: app})
		if err != nil || !strings.Contains(it.Content, iface) {
			t.Fatalf("remote metadata of revision %s not in the config service before the instance: %q, %v", revision, it.Content, err)
		}
	}
	eventually(t, "the mapping synced into the config service", func() (bool, string) {
		it, err := node.ConfigService().Get(configsvc.Key{Group: "mapping", DataID: iface})
		return err == nil && strings.Contains(it.Content, app), fmt.Sprint(it.Content, err)
	})

	cins, err := dubbo.NewInstance(append([]dubbo.InstanceOption{dubbo.WithName(app),
		dubbo.WithRegistry(registry.WithNacos(), registry.WithAddress(node.HTTPAddr().String()), registry.WithRegisterService())}, meta...)...)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := cins.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cli.NewService(&Greeter{}, client.WithRequestTimeout(3*time.Second), client.WithSerialization(constant.Hessian2Serialization))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "Greet answered by the provider found through Ferry", func() (bool, string) {
		var resp GreetReply
		err := conn.CallUnary(context.Background(), []any{&GreetRequest{Name: "ferry"}}, &resp, "Greet")
		return err == nil && resp.Message == "hello ferry", fmt.Sprint(resp, err)
	})
	select {
	case e := <-serveErr:
		t.Fatalf("provider stopped: %v", e)
	default:
	}
}
