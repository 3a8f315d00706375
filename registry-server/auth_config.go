package registryserver

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/auth"
	"github.com/ferrysync/ferry/registry-server/raftstore"
)

// authFileConfig is the auth part of the JSON config file.
type authFileConfig struct {
	AuthEnabled    *bool    `json:"auth"`
	AuthTokenTTL   *string  `json:"authTokenTTL"`
	AuthTokenKey   *string  `json:"authTokenKey"`
	AuthKeyFile    *string  `json:"authKeyFile"`
	AuthLoginRate  *float64 `json:"authLoginRate"`
	AuthLoginBurst *int     `json:"authLoginBurst"`
}

func (f authFileConfig) apply(c *auth.Config) error {
	if f.AuthEnabled != nil {
		c.Enabled = *f.AuthEnabled
	}
	if f.AuthTokenTTL != nil {
		d, err := time.ParseDuration(*f.AuthTokenTTL)
		if err != nil {
			return fmt.Errorf("%w: config file: authTokenTTL %q: %v", ErrConfig, *f.AuthTokenTTL, err)
		}
		c.TokenTTL = d
	}
	if f.AuthTokenKey != nil {
		c.TokenKey = *f.AuthTokenKey
	}
	if f.AuthKeyFile != nil {
		c.KeyFile = *f.AuthKeyFile
	}
	if f.AuthLoginRate != nil {
		c.LoginRate = *f.AuthLoginRate
	}
	if f.AuthLoginBurst != nil {
		c.LoginBurst = *f.AuthLoginBurst
	}
	return nil
}

// openAuth builds the node's Authority over the Raft store and says at
// start what an operator must know when auth is off.
func openAuth(cfg Config, store *raftstore.Store, logger *slog.Logger, prom prometheus.Registerer) (*auth.Authority, error) {
	acfg := cfg.Auth
	if acfg.KeyFile == "" {
		acfg.KeyFile = filepath.Join(cfg.DataDir, "auth", "token.key")
	}
	a, err := auth.New(acfg, auth.Deps{Store: store, AdminPassword: cfg.AdminPassword, Notice: cfg.Notice}, logger, prom)
	if err != nil {
		return nil, fmt.Errorf("registryserver: auth: %w", err)
	}
	if !acfg.Enabled {
		logger.With("subsystem", "auth").Warn("auth is off: anyone who reaches the ports may register, deregister and change configs; " +
			"the operator endpoints (PUT /nacos/v1/ns/ferry/offline, /nacos/v1/auth/users, roles, permissions) answer only on loopback. " +
			"Turn auth on with ferry registry -auth")
	}
	return a, nil
}

// Auth is the node's Authority (nil for a node built with New).
func (s *Server) Auth() *auth.Authority { return s.auth }

// authComponent runs the admin bootstrap; it stops before the Raft store.
type authComponent struct{ a *auth.Authority }

func (c authComponent) Start() error                   { return c.a.Start() }
func (c authComponent) Stop(ctx context.Context) error { c.a.Stop(); return nil }
