package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestRegistryConfigFlagsOverrideFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(p, []byte(`{"port":18848,"dataDir":"/tmp/x","beatTimeout":"20s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := &cmdEnv{stdout: io.Discard, stderr: &bytes.Buffer{}, logger: slog.New(slog.DiscardHandler)}
	cfg, err := registryConfig([]string{"-config", p, "-port", "28848"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 28848 || cfg.EffectiveGRPCPort() != 29848 || cfg.DataDir != "/tmp/x" || cfg.Naming.BeatTimeout.String() != "20s" {
		t.Fatalf("%+v", cfg)
	}
	if _, err := registryConfig([]string{"-port", "70000"}, env); err == nil {
		t.Fatal("bad port accepted")
	}
}

// TestBenchRegistrySmoke runs `ferry bench registry` at a tiny size so that
// the benchmark keeps working (figures are not checked).
func TestBenchRegistrySmoke(t *testing.T) {
	var out bytes.Buffer
	env := &cmdEnv{stdout: &out, stderr: &out, logger: slog.New(slog.DiscardHandler)}
	args := []string{"-instances", "1000", "-singles", "100", "-duration", "200ms", "-subscribers", "10", "-push-rounds", "1", "-zk=false"}
	if err := benchRegistry(t.Context(), env, args); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"batch register", "single register", "queries", "merged beats", "push latency", "memory"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("missing %q in\n%s", want, out.String())
		}
	}
}

// TestRegistryAuthConfig: -auth, the config file's auth keys, the admin
// password from the environment (never a flag), and a bad key refused.
func TestRegistryAuthConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(p, []byte(`{"authTokenTTL":"1h","authLoginRate":2,"authLoginBurst":4,"maxConnsPerIP":100,"requestRate":500}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(adminPasswordEnv, "from-env")
	env := &cmdEnv{stdout: io.Discard, stderr: &bytes.Buffer{}, logger: slog.New(slog.DiscardHandler)}
	cfg, err := registryConfig([]string{"-config", p, "-auth"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Auth.Enabled || cfg.Auth.TokenTTL.String() != "1h0m0s" || cfg.Auth.LoginRate != 2 || cfg.Auth.LoginBurst != 4 ||
		cfg.AdminPassword != "from-env" || cfg.Limits.MaxConnsPerIP != 100 || cfg.Limits.RequestRate != 500 {
		t.Fatalf("%+v", cfg)
	}
	if err := os.WriteFile(p, []byte(`{"authTokenKey":"c2hvcnQ="}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := registryConfig([]string{"-config", p}, env); err == nil {
		t.Fatal("a 5-byte token key accepted")
	}
}
