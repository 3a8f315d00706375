package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/store"
)

// TestSyncIntoAuthRegistry: `ferry sync` into a registry with auth on.
// Without credentials every write is refused (counted by the registry)
// and nothing is registered; with -registry-user and
// FERRY_REGISTRY_PASSWORD (a user holding only read/write on the public
// namespace) every provider appears, healthy, and the store keeps the
// password encrypted.
func TestSyncIntoAuthRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("real ZooKeeper, registry and two ferry sync processes")
	}
	zk := zkserver.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const services, instances = 5, 2
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zk.Addr()}
	lcfg.Services, lcfg.Instances = services, instances
	lcfg.WithNacosShare, lcfg.VersionShare, lcfg.GroupShare = 0, 0, 0
	loader, err := zkload.Connect(ctx, lcfg, slog.New(slog.DiscardHandler))
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
	rcfg.Auth.Enabled = true
	rcfg.Auth.BcryptCost = 4
	rcfg.AdminPassword = "admin-pw"
	reg, err := registryserver.Open(rcfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	poll.Until(t, 30*time.Second, "admin user", func() bool { return reg.Raft().AuthState().HasGlobalAdmin() })
	base := "http://" + reg.HTTPAddr().String()
	tok, _, _, err := reg.Auth().Login("nacos", "admin-pw", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ path, body string }{
		{"/nacos/v1/auth/users", "username=syncer&password=sync-pw"},
		{"/nacos/v1/auth/roles", "role=SYNC&username=syncer"},
		{"/nacos/v1/auth/permissions", "role=SYNC&resource=" + url.QueryEscape(":*:*") + "&action=rw"},
	} {
		resp, err := http.Post(base+step.path+"?accessToken="+tok, "application/x-www-form-urlencoded", strings.NewReader(step.body))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("setup %s: %v %v", step.path, resp, err)
		}
		resp.Body.Close()
	}
	healthy := func() int {
		n := 0
		for _, k := range reg.Naming().Services() {
			if si, err := reg.Naming().Select(k, nil, true); err == nil {
				n += len(si.Hosts)
			}
		}
		return n
	}
	denied := func() float64 {
		mfs, _ := reg.Metrics().Gather()
		var sum float64
		for _, mf := range mfs {
			if mf.GetName() == "ferry_registry_auth_denied_total" {
				for _, m := range mf.GetMetric() {
					sum += m.GetCounter().GetValue()
				}
			}
		}
		return sum
	}

	// Without credentials: refused, nothing registered.
	args := func(db string) []string {
		return []string{"sync", "-zk", zk.Addr(), "-registry", reg.HTTPAddr().String(), "-db", db, "-http", ""}
	}
	anon := startFerry(t, "anonymous", args("sqlite://"+filepath.Join(t.TempDir(), "a.db"))...)
	poll.Until(t, 60*time.Second, "the registry refusing the anonymous worker's writes", func() bool { return denied() >= 3 })
	if n := healthy(); n != 0 {
		t.Fatalf("an anonymous worker registered %d instances", n)
	}
	_ = anon.Process.Kill()

	// With credentials: every provider, healthy.
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	t.Setenv("FERRY_REGISTRY_PASSWORD", "sync-pw")
	t.Setenv(store.EnvStoreKey, key)
	db := "sqlite://" + filepath.Join(t.TempDir(), "b.db")
	startFerry(t, "authenticated", append(args(db), "-registry-user", "syncer")...)
	poll.Until(t, 60*time.Second, fmt.Sprintf("%d healthy instances synced", services*instances), func() bool {
		return healthy() == services*instances
	})
	// The store holds the password encrypted: without the key it cannot
	// be read back.
	st, err := store.Open(ctx, db, slog.New(slog.DiscardHandler), store.WithoutMigrate())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.ListRegistryClusters(ctx); !errors.Is(err, store.ErrNoSecretKey) {
		t.Fatalf("registry password readable without the key: %v", err)
	}
}

// TestSyncRefusesPasswordFlag: a password on the command line is refused
// with a message naming the environment variable.
func TestSyncRefusesPasswordFlag(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"sync", "-registry-user", "u", "-registry-password", "secret"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "FERRY_REGISTRY_PASSWORD") || strings.Contains(errb.String(), "secret") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
