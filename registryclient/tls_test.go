package registryclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	registryserver "github.com/ferrysync/ferry/registry-server"
)

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1 and
// its key; the certificate doubles as the CA file.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestTLSWithAuth: a node with TLS on both ports and auth on; a client
// trusting the certificate logs in over https and queries over gRPC TLS;
// a client without the CA cannot connect.
func TestTLSWithAuth(t *testing.T) {
	cert, key := selfSigned(t)
	cfg := registryserver.DefaultConfig()
	cfg.Port, cfg.DataDir = 0, t.TempDir()
	cfg.TLSCertFile, cfg.TLSKeyFile = cert, key
	cfg.Auth.Enabled, cfg.Auth.BcryptCost, cfg.AdminPassword = true, 4, "pw"
	s, err := registryserver.Open(cfg, testLogger(t).With("side", "server"), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	eventually(t, "admin user", func() bool { return s.Raft().AuthState().HasGlobalAdmin() })

	ccfg := testConfig(t, serversOf(s))
	ccfg.TLSCAFile, ccfg.Username, ccfg.Password = cert, "nacos", "pw"
	c := startClient(t, ccfg)
	ctx := ctxT(t, 10*time.Second)
	if err := c.Register(ctx, demo, Instance{IP: "10.0.0.1", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if q, err := c.Query(ctx, demo, "", true); err != nil || len(q.Hosts) != 1 {
		t.Fatalf("query over TLS: %+v %v", q, err)
	}
	if n := testutil.ToFloat64(c.m.logins.WithLabelValues("ok")); n != 1 {
		t.Fatalf("logins over https: %v", n)
	}

	plain := startClient(t, testConfig(t, serversOf(s)))
	pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := plain.Query(pctx, demo, "", true); err == nil {
		t.Fatal("a plaintext client got an answer from a TLS port")
	}
}
