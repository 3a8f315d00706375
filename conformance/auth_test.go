package conformance

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/registry-server/configsvc"
)

const adminPassword = "conformance-admin"

// openAuthNode runs a whole node with auth on (admin nacos /
// adminPassword, tokens valid for ttl) and waits for the admin user.
func openAuthNode(t *testing.T, ttl time.Duration) *registryserver.Server {
	t.Helper()
	cfg := registryserver.DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	cfg.Auth.Enabled = true
	cfg.Auth.TokenTTL = ttl
	cfg.Auth.BcryptCost = 4 // tests: cheap hashes
	cfg.AdminPassword = adminPassword
	s, err := registryserver.Open(cfg, slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	eventually(t, "admin user", func() (bool, string) { return s.Raft().AuthState().HasGlobalAdmin(), "" })
	return s
}

func authClientConfig(t *testing.T, user, pw string) (constant.ClientConfig, []constant.ServerConfig) {
	dir := t.TempDir()
	cc := constant.NewClientConfig(
		constant.WithTimeoutMs(3000),
		constant.WithNotLoadCacheAtStart(true),
		constant.WithUpdateCacheWhenEmpty(true),
		constant.WithLogDir(dir+"/log"),
		constant.WithCacheDir(dir+"/cache"),
		constant.WithLogLevel("warn"),
		constant.WithUsername(user),
		constant.WithPassword(pw),
	)
	return *cc, nil
}

func authNaming(t *testing.T, s *registryserver.Server, user, pw string) naming_client.INamingClient {
	t.Helper()
	cc, _ := authClientConfig(t, user, pw)
	sc := []constant.ServerConfig{{IpAddr: "127.0.0.1", Port: port(s.HTTPAddr()), GrpcPort: port(s.GRPCAddr()), ContextPath: "/nacos", Scheme: "http"}}
	c, err := clients.NewNamingClient(vo.NacosClientParam{ClientConfig: &cc, ServerConfigs: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseClient)
	return c
}

func authConfig(t *testing.T, s *registryserver.Server, user, pw string) config_client.IConfigClient {
	t.Helper()
	cc, _ := authClientConfig(t, user, pw)
	sc := []constant.ServerConfig{{IpAddr: "127.0.0.1", Port: port(s.HTTPAddr()), GrpcPort: port(s.GRPCAddr()), ContextPath: "/nacos", Scheme: "http"}}
	c, err := clients.NewConfigClient(vo.NacosClientParam{ClientConfig: &cc, ServerConfigs: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sync.OnceFunc(c.CloseClient))
	return c
}

// loginsOK reads the node's count of successful logins.
func loginsOK(t *testing.T, s *registryserver.Server) float64 {
	t.Helper()
	return counter(t, s, "ferry_registry_auth_logins_total", "result", "ok")
}

// TestAuthSDKWithCredentials: the real SDK v2.3.5 naming and config
// clients with username/password against a node with auth on do
// everything they do without auth: register, query, subscribe-free
// select, publish and read a config.
func TestAuthSDKWithCredentials(t *testing.T) {
	s := openAuthNode(t, time.Hour)
	nc := authNaming(t, s, "nacos", adminPassword)
	if ok, err := nc.RegisterInstance(reg("10.0.0.1", 20880, "auth.svc")); !ok || err != nil {
		t.Fatalf("register with credentials: %v %v", ok, err)
	}
	eventually(t, "the instance through the SDK", func() (bool, string) {
		in, err := nc.SelectInstances(vo.SelectInstancesParam{ServiceName: "auth.svc", HealthyOnly: true})
		if err != nil {
			return false, err.Error()
		}
		return ports(in) == "10.0.0.1:20880", ports(in)
	})
	cc := authConfig(t, s, "nacos", adminPassword)
	if ok, err := cc.PublishConfig(vo.ConfigParam{DataId: "auth.cfg", Group: "DEFAULT_GROUP", Content: "v1"}); !ok || err != nil {
		t.Fatalf("publish with credentials: %v %v", ok, err)
	}
	got, err := cc.GetConfig(vo.ConfigParam{DataId: "auth.cfg", Group: "DEFAULT_GROUP"})
	if err != nil || got != "v1" {
		t.Fatalf("get with credentials: %q %v", got, err)
	}
	if loginsOK(t, s) < 2 {
		t.Fatalf("the SDK clients did not log in: %v", loginsOK(t, s))
	}
}

// TestAuthSDKRefused: without credentials, or with a wrong password, the
// SDK's registration and config calls fail as the SDK reports a refusal
// (not ok / an error) and the node stores nothing.
func TestAuthSDKRefused(t *testing.T) {
	s := openAuthNode(t, time.Hour)
	cc := authConfig(t, s, "nacos", adminPassword)
	if ok, err := cc.PublishConfig(vo.ConfigParam{DataId: "secret.cfg", Group: "DEFAULT_GROUP", Content: "s3cret"}); !ok || err != nil {
		t.Fatalf("admin publish: %v %v", ok, err)
	}
	for _, c := range []struct{ name, user, pw string }{
		{"no credentials", "", ""},
		{"wrong password", "nacos", "guess"},
		{"unknown user", "mallory", "guess"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := counter(t, s, "ferry_registry_auth_denied_total", "type", "naming")
			nc := authNaming(t, s, c.user, c.pw)
			ok, err := nc.RegisterInstance(reg("10.6.6.6", 1, "refused.svc"))
			// v2.3.5 answers a typed refusal (as from a real Nacos) with
			// ok=false and no error.
			if ok {
				t.Fatalf("register refused? ok=%v err=%v", ok, err)
			}
			if h := serverHosts(s, "refused.svc", false); h != "" {
				t.Fatalf("refused registration stored: %s", h)
			}
			if after := counter(t, s, "ferry_registry_auth_denied_total", "type", "naming"); after <= before {
				t.Fatalf("no refusal counted (%v → %v)", before, after)
			}
			cfg := authConfig(t, s, c.user, c.pw)
			// The SDK reports the refusal with the server's message.
			got, err := cfg.GetConfig(vo.ConfigParam{DataId: "secret.cfg", Group: "DEFAULT_GROUP"})
			if got != "" || err == nil || err.Error() != "user not found!" {
				t.Fatalf("config read without the right credentials: %q %v", got, err)
			}
			ok, err = cfg.PublishConfig(vo.ConfigParam{DataId: "secret.cfg", Group: "DEFAULT_GROUP", Content: "pwned"})
			if ok {
				t.Fatalf("publish refused? ok=%v err=%v", ok, err)
			}
			if it, _ := s.Raft().Config(configsvc.Key{Group: "DEFAULT_GROUP", DataID: "secret.cfg"}); it.Content != "s3cret" {
				t.Fatalf("refused publish stored: %q", it.Content)
			}
		})
	}
}

// TestAuthSDKTokenRefresh: tokens live 30 s here (Nacos' default is
// 18000 s; the SDK re-logs in once 80% of the TTL has passed, checking
// every 5 s, so 30 s is the shortest TTL for which it renews before
// expiry). For 35 s — past the first token's expiry — the SDK queries the
// service and reads a config every 100 ms, as consumers do, without one
// error; the node saw it log in again.
func TestAuthSDKTokenRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("35 s of traffic across a token expiry")
	}
	s := openAuthNode(t, 30*time.Second)
	nc := authNaming(t, s, "nacos", adminPassword)
	cc := authConfig(t, s, "nacos", adminPassword)
	if ok, err := nc.RegisterInstance(reg("10.0.0.2", 20880, "refresh.svc")); !ok || err != nil {
		t.Fatalf("register: %v %v", ok, err)
	}
	if ok, err := cc.PublishConfig(vo.ConfigParam{DataId: "refresh.cfg", Group: "DEFAULT_GROUP", Content: "v"}); !ok || err != nil {
		t.Fatalf("publish: %v %v", ok, err)
	}
	first := loginsOK(t, s)
	deadline := time.Now().Add(35 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for time.Now().Before(deadline) {
		<-tick.C
		in, err := nc.SelectInstances(vo.SelectInstancesParam{ServiceName: "refresh.svc", HealthyOnly: true})
		if err != nil || ports(in) != "10.0.0.2:20880" {
			t.Fatalf("sample %d: %s %v", n, ports(in), err)
		}
		got, err := cc.GetConfig(vo.ConfigParam{DataId: "refresh.cfg", Group: "DEFAULT_GROUP"})
		if err != nil || got != "v" {
			t.Fatalf("config sample %d: %q %v", n, got, err)
		}
		n++
	}
	if again := loginsOK(t, s); again <= first {
		t.Fatalf("the SDK did not log in again within 35 s (logins %v → %v)", first, again)
	}
	if d := counter(t, s, "ferry_registry_auth_denied_total", "type", "naming"); d != 0 {
		t.Fatalf("%v naming requests refused during the refresh", d)
	}
}
