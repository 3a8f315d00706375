package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func rawPassword(t *testing.T, s *Store, id int64) string {
	t.Helper()
	var p string
	if err := s.sqlDB.QueryRow("SELECT password FROM registry_clusters WHERE id = ?", id).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPasswordsEncrypted: a registry cluster's password is encrypted at
// rest, read back in clear only by a store with the key, refused without
// a key, and re-encrypted on rotation.
func TestPasswordsEncrypted(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "ferry.db")
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	sec1, err := NewSecrets(k1)
	if err != nil {
		t.Fatal(err)
	}
	open := func(opts ...Option) *Store {
		s, err := Open(ctx, dsn, testLogger(t), opts...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	s := open()
	c := &RegistryCluster{Name: "nacos", Kind: RegistryNacos, ServerList: []string{"n:8848"}, Username: "ferry", Password: "pa55word"}
	if err := s.CreateRegistryCluster(ctx, c); !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("password without a key: %v", err)
	}
	// A row written before encryption (plain text) ...
	c.Password = ""
	if err := s.CreateRegistryCluster(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sqlDB.Exec("UPDATE registry_clusters SET password = 'legacy' WHERE id = ?", c.ID); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// ... is encrypted when a store with a key opens.
	s = open(WithSecrets(sec1))
	raw := rawPassword(t, s, c.ID)
	if !strings.HasPrefix(raw, "enc:v1:") || strings.Contains(raw, "legacy") {
		t.Fatalf("legacy row not re-encrypted: %q", raw)
	}
	got, err := s.GetRegistryCluster(ctx, c.ID)
	if err != nil || got.Password != "legacy" {
		t.Fatalf("get: %+v %v", got, err)
	}
	got.Password = "pa55word"
	if err := s.UpdateRegistryCluster(ctx, got); err != nil || got.Password != "pa55word" {
		t.Fatalf("update: %v (caller's value %q)", err, got.Password)
	}
	raw = rawPassword(t, s, c.ID)
	if strings.Contains(raw, "pa55word") {
		t.Fatalf("password stored in clear: %q", raw)
	}
	if l, err := s.ListRegistryClusters(ctx); err != nil || l[0].Password != "pa55word" {
		t.Fatalf("list: %+v %v", l, err)
	}
	s.Close()

	// Without the key, reading fails loudly (never returns the ciphertext).
	s = open()
	if _, err := s.GetRegistryCluster(ctx, c.ID); !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("get without key: %v", err)
	}
	s.Close()

	// Rotation: new key first, the old one to decrypt; Open re-encrypts.
	rot, err := SecretsFromEnv(func(k string) string {
		return map[string]string{EnvStoreKey: base64.StdEncoding.EncodeToString(k2), EnvStoreOldKeys: base64.StdEncoding.EncodeToString(k1)}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	s = open(WithSecrets(rot))
	if r := rawPassword(t, s, c.ID); r == raw {
		t.Fatal("rotation did not re-encrypt")
	}
	s.Close()
	// The new key alone now reads it (from a key file this time).
	kf := filepath.Join(t.TempDir(), "store.key")
	if err := os.WriteFile(kf, []byte(base64.StdEncoding.EncodeToString(k2)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	only2, err := SecretsFromEnv(func(k string) string { return map[string]string{EnvStoreKeyFile: kf}[k] })
	if err != nil {
		t.Fatal(err)
	}
	s = open(WithSecrets(only2))
	defer s.Close()
	if got, err := s.GetRegistryCluster(ctx, c.ID); err != nil || got.Password != "pa55word" {
		t.Fatalf("after rotation: %+v %v", got, err)
	}
	// The old key alone no longer can.
	s1, err := Open(ctx, dsn, testLogger(t), WithSecrets(sec1))
	if !errors.Is(err, ErrSecret) {
		t.Fatalf("old key after rotation: %v", err)
	}
	if s1 != nil {
		s1.Close()
	}
	if none, err := SecretsFromEnv(func(string) string { return "" }); none != nil || err != nil {
		t.Fatalf("no key set: %v %v", none, err)
	}
}
