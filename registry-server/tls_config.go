package registryserver

import (
	"crypto/tls"
	"fmt"
	"net"
)

// TLS on both ports (Config.TLSCertFile/TLSKeyFile): the listeners are
// wrapped in crypto/tls, offering HTTP/2 ("h2", which gRPC clients
// require) and HTTP/1.1. Clients then use https:// and gRPC TLS
// credentials (registryclient: TLSCAFile; nacos-sdk-go: TLSConfig).

// tlsFileConfig is the TLS part of the JSON config file.
type tlsFileConfig struct {
	TLSCert *string `json:"tlsCert"`
	TLSKey  *string `json:"tlsKey"`
}

func (f tlsFileConfig) apply(c *Config) {
	if f.TLSCert != nil {
		c.TLSCertFile = *f.TLSCert
	}
	if f.TLSKey != nil {
		c.TLSKeyFile = *f.TLSKey
	}
}

func (c Config) validateTLS() error {
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return fmt.Errorf("%w: TLSCertFile and TLSKeyFile go together", ErrConfig)
	}
	return nil
}

// loadTLS reads the certificate and key (nil, nil without TLS).
func (c Config) loadTLS() (*tls.Config, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS certificate: %v", ErrConfig, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}, nil
}

// tlsListener wraps one port's listener in TLS when it is configured.
func (s *Server) tlsListener(lis net.Listener) net.Listener {
	if s.tls == nil {
		return lis
	}
	return tls.NewListener(lis, s.tls)
}
