//go:build !race

package dubbogo

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	_ "dubbo.apache.org/dubbo-go/v3/imports"
	"dubbo.apache.org/dubbo-go/v3/protocol"
	"dubbo.apache.org/dubbo-go/v3/registry"
	"dubbo.apache.org/dubbo-go/v3/server"
	hessian "github.com/apache/dubbo-go-hessian2"

	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/registry-server/naming"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// freePortPair finds a free port p with p+1000 free too (Nacos clients
// derive the gRPC port as the main port + 1000).
func freePortPair(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p+1000 > 65535 {
			continue
		}
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1000))
		if err != nil {
			continue
		}
		l2.Close()
		return p
	}
	t.Fatal("no free port pair")
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func openNode(t *testing.T) *registryserver.Server { return openNodeWith(t, nil) }

func openNodeWith(t *testing.T, mod func(*registryserver.Config)) *registryserver.Server {
	t.Helper()
	cfg := registryserver.DefaultConfig()
	cfg.Port = freePortPair(t)
	cfg.DataDir = t.TempDir()
	if mod != nil {
		mod(&cfg)
	}
	s, err := registryserver.Open(cfg, slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	if err := s.Raft().WaitReady(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return s
}

// Greeter is the provider's service (Triple, non-IDL).
type Greeter struct{}

// GreetRequest and GreetReply are the call's messages (msgpack).
type GreetRequest struct{ Name string }

type GreetReply struct{ Message string }

func (*GreetRequest) JavaClassName() string { return "org.ferrysync.test.GreetRequest" }
func (*GreetReply) JavaClassName() string   { return "org.ferrysync.test.GreetReply" }

func (*Greeter) Greet(_ context.Context, req *GreetRequest) (*GreetReply, error) {
	return &GreetReply{Message: "hello " + req.Name}, nil
}

func (*Greeter) Reference() string { return "org.ferrysync.test.Greeter" }

// TestDubboGoProviderAndConsumer: a provider and a consumer with the
// registry given as a Nacos address and default settings (use as config
// center and metadata report) start cleanly against Ferry; the
// interface-to-application mapping goes through the config service (CAS
// publish by the provider, listener of the consumer), the provider's
// application instance through naming, and the consumer calls it (Triple,
// non-IDL, hessian2).
func TestDubboGoProviderAndConsumer(t *testing.T) {
	providerAndConsumer(t, openNode(t), "ferry-dubbogo-demo")
}

// providerAndConsumer runs the provider/consumer scenario against node,
// the registry options (credentials) added to both instances.
func providerAndConsumer(t *testing.T, node *registryserver.Server, app string, extra ...registry.Option) {
	hessian.RegisterPOJO(&GreetRequest{})
	hessian.RegisterPOJO(&GreetReply{})
	addr := node.HTTPAddr().String()
	regOpts := append([]registry.Option{registry.WithNacos(), registry.WithAddress(addr)}, extra...)
	// app is one application name for provider and consumer: dubbo-go
	// keeps the application in process-wide state, so a second instance in
	// the same process would rename the first one's registration. Each
	// scenario uses its own name (the SDK's on-disk cache is keyed by it).
	pins, err := dubbo.NewInstance(dubbo.WithName(app),
		dubbo.WithRegistry(regOpts...))
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
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeContext(ctx) }()

	cins, err := dubbo.NewInstance(dubbo.WithName(app),
		dubbo.WithRegistry(regOpts...))
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
	// Ferry served the parts of Nacos dubbo-go uses with default
	// settings: the interface → application mapping (published through
	// the config service with CAS, listened to by the consumer), and the
	// application instance in naming.
	iface := (&Greeter{}).Reference()
	eventually(t, "the service-app mapping in the config service", func() (bool, string) {
		it, err := node.ConfigService().Get(configsvc.Key{Group: "mapping", DataID: iface})
		return err == nil && strings.Contains(it.Content, app), fmt.Sprint(it.Content, err)
	})
	eventually(t, "the consumer listening to the mapping", func() (bool, string) {
		n := len(node.ConfigService().Listeners(configsvc.Key{Group: "mapping", DataID: iface}))
		return n > 0, fmt.Sprint(n, " listeners")
	})
	eventually(t, "the provider's application instance in naming", func() (bool, string) {
		si, err := node.Naming().Select(naming.ServiceKey{Group: "DEFAULT_GROUP", Name: app}, nil, true)
		if err != nil || len(si.Hosts) == 0 {
			return false, fmt.Sprint(err)
		}
		_, ok := si.Hosts[0].Metadata["dubbo.metadata.revision"]
		return ok, fmt.Sprint(si.Hosts[0].Metadata)
	})

	// And the consumer calls the provider it found through Ferry.
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

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}
