package main

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/internal/zkserver"
)

// TestMain lets the test binary be its own etcd child (benchchild.Self).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve-etcd" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestTinyRun runs the whole bench, every system, at a tiny shape: 20
// connections, 50 instances, 4 readers, 0.5 s windows.
func TestTinyRun(t *testing.T) {
	systems := "ferry,zookeeper,etcd"
	if err := zkserver.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Logf("without zookeeper: %v", err)
		systems = "ferry,etcd"
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ferry := filepath.Join(dir, "ferry")
	build := exec.Command(goBin, "build", "-o", ferry, "./cmd/ferry")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ferry: %v\n%s", err, out)
	}
	cfg, err := parseFlags([]string{"-systems", systems, "-ferry", ferry, "-conns", "20", "-services", "5", "-replicas", "10",
		"-readers", "4", "-hold", "500ms", "-duration", "500ms", "-out", filepath.Join(dir, "peers.md"), "-svg", filepath.Join(dir, "peers.svg")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs, err := runAll(ctx, testlog.New(t, slog.LevelInfo), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(cfg.systems) {
		t.Fatalf("%d results, want %d", len(rs), len(cfg.systems))
	}
	for _, r := range rs {
		if r.instances != 50 || r.registerPerSec <= 0 || r.queries <= 0 || r.cpuPer1kQuery <= 0 || r.rssIdle <= 0 || r.rssPeak < r.rssHolding {
			t.Errorf("%s: implausible result %+v", r.system, r)
		}
	}
	md := markdown(rs, cfg)
	if err := writeOutputs(cfg, rs, md); err != nil {
		t.Fatal(err)
	}
	for _, s := range cfg.systems {
		if !strings.Contains(md, "| "+s+" | 20 |") {
			t.Errorf("table has no row for %s:\n%s", s, md)
		}
	}
	svg, err := os.ReadFile(cfg.svg)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
	}
	if strings.Contains(string(svg), "<script") {
		t.Error("chart has a script")
	}
}

func TestFlagsValidate(t *testing.T) {
	for _, args := range [][]string{
		{"-conns", "5", "-replicas", "10"}, // a connection holds one instance per service
		{"-systems", "consul"},
		{"-conns", "x"},
		{"-hold", "0s"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := parseFlags(nil, io.Discard); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
