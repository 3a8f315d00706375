package nacosv1

import (
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/clients"
	"github.com/nacos-group/nacos-sdk-go/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/common/constant"
	"github.com/nacos-group/nacos-sdk-go/model"
	"github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/registry-server/naming"
)

// openNode runs a whole node on free loopback ports.
func openNode(t *testing.T) *registryserver.Server {
	t.Helper()
	cfg := registryserver.DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	s, err := registryserver.Open(cfg, testlog.New(t, slog.LevelWarn), nil)
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

// newClient is a real SDK v1.1.4 naming client against s. Its polls come
// from 127.0.0.1 while it reports the machine's LAN address as clientIP;
// the registry pushes to the source address.
func newClient(t *testing.T, s *registryserver.Server) naming_client.INamingClient {
	t.Helper()
	dir := t.TempDir()
	c, err := clients.NewNamingClient(vo.NacosClientParam{
		ClientConfig: &constant.ClientConfig{
			TimeoutMs:           5000,
			NotLoadCacheAtStart: true,
			LogDir:              dir + "/log",
			CacheDir:            dir + "/cache",
			LogLevel:            "warn",
		},
		ServerConfigs: []constant.ServerConfig{{IpAddr: "127.0.0.1", Port: uint64(s.HTTPAddr().(*net.TCPAddr).Port), ContextPath: "/nacos", Scheme: "http"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// view is one subscription callback: the sorted "ip:port k=v" of its hosts.
type view []string

func viewOf(hosts []model.SubscribeService) view {
	var v view
	for _, h := range hosts {
		v = append(v, fmt.Sprintf("%s:%d k=%s", h.Ip, h.Port, h.Metadata["k"]))
	}
	sort.Strings(v)
	return v
}

func (v view) String() string { return strings.Join(v, ", ") }

// TestPushReachesSubscriber: a registration, a deregistration and a
// metadata change each reach a subscribed SDK v1.1.4 client's callback
// within 2 s: pushed over UDP (the SDK otherwise polls every 10 s) and
// acknowledged.
func TestPushReachesSubscriber(t *testing.T) {
	s := openNode(t)
	provider, consumer := newClient(t, s), newClient(t, s)
	const svc = "providers:com.example.Legacy::"
	reg := func(ip string, meta string) {
		t.Helper()
		ok, err := provider.RegisterInstance(vo.RegisterInstanceParam{Ip: ip, Port: 20880, ServiceName: svc, Weight: 1,
			Enable: true, Healthy: true, Ephemeral: true, Metadata: map[string]string{"k": meta}})
		if !ok || err != nil {
			t.Fatalf("register %s: %v %v", ip, ok, err)
		}
	}
	reg("10.0.0.1", "a")
	reg("10.0.0.2", "a")

	views := make(chan view, 64)
	if err := consumer.Subscribe(&vo.SubscribeParam{ServiceName: svc, SubscribeCallback: func(hosts []model.SubscribeService, err error) {
		if err == nil {
			views <- viewOf(hosts)
		}
	}}); err != nil {
		t.Fatal(err)
	}
	// expect waits for a callback showing want, at most 2 s after the change.
	expect := func(what string, want ...string) {
		t.Helper()
		sort.Strings(want)
		w := view(want).String()
		start := time.Now()
		deadline := time.After(2 * time.Second)
		for {
			select {
			case v := <-views:
				if v.String() == w {
					t.Logf("%s: callback after %v", what, time.Since(start).Round(time.Millisecond))
					return
				}
			case <-deadline:
				t.Fatalf("%s: no callback with [%s] within 2 s", what, w)
			}
		}
	}
	expect("subscribe", "10.0.0.1:20880 k=a", "10.0.0.2:20880 k=a")
	up := s.UDPPush()
	key := naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: svc}
	if subs := up.Subscribers(key); len(subs) != 1 || subs[0].Agent != "Nacos-Go-Client:v1.1.4" {
		t.Fatalf("UDP subscribers %+v", subs)
	}

	reg("10.0.0.3", "a")
	expect("registration", "10.0.0.1:20880 k=a", "10.0.0.2:20880 k=a", "10.0.0.3:20880 k=a")

	if ok, err := provider.DeregisterInstance(vo.DeregisterInstanceParam{Ip: "10.0.0.3", Port: 20880, ServiceName: svc, Ephemeral: true}); !ok || err != nil {
		t.Fatalf("deregister: %v %v", ok, err)
	}
	expect("deregistration", "10.0.0.1:20880 k=a", "10.0.0.2:20880 k=a")

	if ok, err := provider.UpdateInstance(vo.UpdateInstanceParam{Ip: "10.0.0.2", Port: 20880, ServiceName: svc, Weight: 1, Enable: true,
		Ephemeral: true, Metadata: map[string]string{"k": "b"}}); !ok || err != nil {
		t.Fatalf("update: %v %v", ok, err)
	}
	expect("metadata change", "10.0.0.1:20880 k=a", "10.0.0.2:20880 k=b")

	// Every one of them was pushed and acknowledged (the callbacks could
	// not have come from polls: they are 10 s apart). The SDK acks after
	// its callback returns, so the last ack may still be on its way.
	poll.Until(t, 2*time.Second, "3 acknowledged UDP pushes", func() bool {
		return counter(t, s, "ferry_registry_udp_pushes_total", "result", "ok") >= 3
	})
}

// counter reads one counter of the node's /metrics registry.
func counter(t *testing.T, s *registryserver.Server, name, label, value string) float64 {
	t.Helper()
	mfs, err := s.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}
