package conformance

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/registry-server/configsvc"
)

// openNode runs a whole node (Raft store and config service included) on
// free loopback ports.
func openNode(t *testing.T) *registryserver.Server {
	t.Helper()
	cfg := registryserver.DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	s, err := registryserver.Open(cfg, slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})), nil)
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

// newConfigClient builds a real SDK config client against s; close closes
// it once (the test's cleanup calls it too).
func newConfigClient(t *testing.T, s *registryserver.Server) (c config_client.IConfigClient, close func()) {
	t.Helper()
	dir := t.TempDir()
	cc := constant.NewClientConfig(
		constant.WithTimeoutMs(5000),
		constant.WithNotLoadCacheAtStart(true),
		constant.WithLogDir(dir+"/log"),
		constant.WithCacheDir(dir+"/cache"),
		constant.WithLogLevel("warn"),
	)
	sc := []constant.ServerConfig{{IpAddr: "127.0.0.1", Port: port(s.HTTPAddr()), GrpcPort: port(s.GRPCAddr()), ContextPath: "/nacos", Scheme: "http"}}
	c, err := clients.NewConfigClient(vo.NacosClientParam{ClientConfig: cc, ServerConfigs: sc})
	if err != nil {
		t.Fatal(err)
	}
	close = sync.OnceFunc(c.CloseClient)
	t.Cleanup(close)
	return c, close
}

// TestConfigClient drives the real nacos-sdk-go v2.3.5 config client:
// publish, get, a missing config read as empty, listen and receive a
// change pushed by the server, CAS publish with a stale md5 refused and
// with the current one accepted, remove (the listener hears it too), and
// the server drops the listeners of a closed client.
func TestConfigClient(t *testing.T) {
	s := openNode(t)
	pub, _ := newConfigClient(t, s)
	sub, closeSub := newConfigClient(t, s)
	p := vo.ConfigParam{DataId: "dubbo.properties", Group: "dubbo", Content: "timeout=1000", Type: "properties"}

	if got, err := pub.GetConfig(vo.ConfigParam{DataId: "missing", Group: "dubbo"}); err != nil || got != "" {
		t.Fatalf("get missing = %q, %v (want empty, no error)", got, err)
	}
	if ok, err := pub.PublishConfig(p); !ok || err != nil {
		t.Fatalf("publish: %v %v", ok, err)
	}
	if got, err := sub.GetConfig(vo.ConfigParam{DataId: p.DataId, Group: p.Group}); err != nil || got != p.Content {
		t.Fatalf("get = %q, %v", got, err)
	}
	it, err := s.ConfigService().Get(configsvc.Key{Group: "dubbo", DataID: "dubbo.properties"})
	if err != nil || it.Type != "properties" {
		t.Fatalf("server item = %+v, %v", it, err)
	}

	changes := make(chan string, 16)
	if err := sub.ListenConfig(vo.ConfigParam{DataId: p.DataId, Group: p.Group, OnChange: func(_, _, _, data string) {
		changes <- data
	}}); err != nil {
		t.Fatal(err)
	}
	key := configsvc.Key{Group: p.Group, DataID: p.DataId}
	eventually(t, "the listener registered on the server", func() (bool, string) {
		n := len(s.ConfigService().Listeners(key))
		return n == 1, strings.Repeat("x", n)
	})
	// The first ListenConfig may report the current content; drain it.
	drain(changes)

	before := listenRequests(t, s)
	p.Content = "timeout=2000"
	if ok, err := pub.PublishConfig(p); !ok || err != nil {
		t.Fatalf("publish change: %v %v", ok, err)
	}
	waitChange(t, changes, "timeout=2000")
	settled(t, s, before+1)

	// CAS: a stale md5 is refused, nothing changes; the current one works.
	stale := p
	stale.Content, stale.CasMd5 = "timeout=3000", configsvc.MD5("timeout=1000")
	if ok, err := pub.PublishConfig(stale); ok || err == nil {
		t.Fatalf("stale cas publish = %v, %v; want refused", ok, err)
	}
	if got, _ := s.ConfigService().Get(key); got.Content != "timeout=2000" {
		t.Fatalf("after refused cas: %q", got.Content)
	}
	fresh := stale
	fresh.CasMd5 = configsvc.MD5("timeout=2000")
	before = listenRequests(t, s)
	if ok, err := pub.PublishConfig(fresh); !ok || err != nil {
		t.Fatalf("cas publish: %v %v", ok, err)
	}
	waitChange(t, changes, "timeout=3000")
	settled(t, s, before+1)

	if ok, err := pub.DeleteConfig(vo.ConfigParam{DataId: p.DataId, Group: p.Group}); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	waitChange(t, changes, "")
	if got, err := pub.GetConfig(vo.ConfigParam{DataId: p.DataId, Group: p.Group}); err != nil || got != "" {
		t.Fatalf("get deleted = %q, %v", got, err)
	}

	closeSub()
	eventually(t, "the closed client's listeners dropped", func() (bool, string) {
		n := len(s.ConfigService().Listeners(key))
		return n == 0, strings.Repeat("x", n)
	})
}

// listenRequests counts the ConfigBatchListenRequests the server answered.
func listenRequests(t *testing.T, s *registryserver.Server) float64 {
	t.Helper()
	mfs, err := s.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "ferry_registry_grpc_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && l.GetValue() == "ConfigBatchListenRequest" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// settled waits, after the listener saw a change, for the SDK's next
// ConfigBatchListenRequest (the one confirming its new md5). A push that
// reaches nacos-sdk-go v2.3.5 while that request is in flight is lost by
// the SDK itself (executeConfigListen marks the config in sync after the
// answer), with Nacos as with Ferry; the test avoids that client race.
func settled(t *testing.T, s *registryserver.Server, before float64) {
	t.Helper()
	eventually(t, "the SDK confirming its md5", func() (bool, string) {
		n := listenRequests(t, s)
		return n > before, fmt.Sprint(n)
	})
}

func drain(ch chan string) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func waitChange(t *testing.T, ch chan string, want string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
			t.Logf("change %q (waiting for %q)", got, want)
		case <-deadline:
			t.Fatalf("no change to %q within 15s", want)
		}
	}
}
