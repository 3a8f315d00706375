package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/internal/zkserver"
)

// TestBenchSoakTiny runs the built binary's `ferry bench soak` at a tiny
// shape (its children are the binary itself: the registry and `ferry
// sync`): it must print the samples, pass its final check and write a
// well-formed chart and table.
func TestBenchSoakTiny(t *testing.T) {
	if err := zkserver.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	ferry := filepath.Join(dir, "ferry")
	if out, err := exec.Command("go", "build", "-o", ferry, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	svg, md := filepath.Join(dir, "soak.svg"), filepath.Join(dir, "soak.md")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(ferry, "bench", "soak", "-services", "20", "-instances", "3", "-rate", "10",
		"-duration", "5s", "-interval", "2s", "-idle", "1s", "-svg", svg, "-out", md)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench soak: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"all 60 desired instances registered", "worker RSS MiB", "worker RSS: ", "ms per ZooKeeper write", "net of the idle background",
		"final check: the registry holds exactly the 60 expected instances of 20 services"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n   "); n < 3 { // minute 0 and at least two more samples
		t.Errorf("%d sample lines, want ≥ 3:\n%s", n, out)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != 7 { // RSS ×2, CPU ×2, heap ×1, CPU per write ×2
		t.Errorf("chart has %d lines, want 7", lines)
	}
	if m, err := os.ReadFile(md); err != nil || !strings.Contains(string(m), "| min | worker RSS MiB |") {
		t.Errorf("markdown: %v\n%s", err, m)
	}
}
