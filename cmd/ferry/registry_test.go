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
