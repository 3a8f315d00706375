package main

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestPeersModuleFound(t *testing.T) {
	dir, err := peersModule()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.Abs("../../bench/peers"); dir != want {
		t.Fatalf("peersModule() = %s, want %s", dir, want)
	}
	t.Setenv("FERRY_SRC", t.TempDir())
	if _, err := peersModule(); !errors.Is(err, errNoPeersModule) {
		t.Fatalf("FERRY_SRC without the tree: %v, want errNoPeersModule", err)
	}
}
