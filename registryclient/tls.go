package registryclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLS toward the registry (Config.TLSCAFile): gRPC with TLS credentials
// and HTTP (login, the DELETE fallback) over https, both trusting the CA
// file's certificates only.

// loadTLS reads the CA file into a client TLS config (nil without one).
func loadTLS(cfg *Config) (*tls.Config, error) {
	if cfg.TLSCAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(cfg.TLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("%w: TLSCAFile: %v", ErrInvalidConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: TLSCAFile %s holds no PEM certificate", ErrInvalidConfig, cfg.TLSCAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName}, nil
}

// transportCredentials are the gRPC credentials of cfg.
func (cfg *Config) transportCredentials() credentials.TransportCredentials {
	if cfg.tls == nil {
		return insecure.NewCredentials()
	}
	return credentials.NewTLS(cfg.tls.Clone())
}

// scheme is the HTTP scheme toward the registry.
func (cfg *Config) scheme() string {
	if cfg.tls == nil {
		return "http://"
	}
	return "https://"
}

func httpClient(cfg *Config) *http.Client {
	c := &http.Client{Timeout: cfg.RequestTimeout}
	if cfg.tls != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cfg.tls.Clone()
		c.Transport = t
	}
	return c
}
