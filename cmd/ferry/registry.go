package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/ferrysync/ferry/internal/diag"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/registry-server/membership"
)

// adminPasswordEnv holds the password of the admin user created at the
// first start with -auth (never a flag: flags show in ps).
const adminPasswordEnv = "FERRY_REGISTRY_ADMIN_PASSWORD"

// runRegistry runs one registry node until ctx ends.
//
//	ferry registry [-port 8848] [-grpc-port 0] [-bind 127.0.0.1] [-data ./data/registry] [-config file.json] [-auth]
//	               [-members host:port,... | -members-file cluster.conf] [-advertise host:port]
//	               [-balance-interval 5s] [-balance-factor 0.1]
//
// The config file (JSON, see README "## registry") sets the rest; flags
// given on the command line override it.
func runRegistry(ctx context.Context, env *cmdEnv, args []string) error {
	cfg, err := registryConfig(args, env)
	if err != nil {
		return err
	}
	diag.LogLimits(env.logger) // GOMEMLIMIT, GOGC, GOMAXPROCS in force
	// Open: naming core, gRPC, Raft store, health prober and HTTP open API.
	s, err := registryserver.Open(cfg, env.logger, nil)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	if cfg.Clustered() {
		fmt.Fprintf(env.stdout, "registry: member %s of %d, HTTP %s, gRPC %s\n", cfg.Self(), len(cfg.Members), s.HTTPAddr(), s.GRPCAddr())
	} else {
		fmt.Fprintf(env.stdout, "registry: HTTP %s, gRPC %s\n", s.HTTPAddr(), s.GRPCAddr())
	}
	<-ctx.Done()
	s.Stop()
	return nil
}

// registryConfig builds the config: defaults, then the file, then the
// flags that were given.
func registryConfig(args []string, env *cmdEnv) (registryserver.Config, error) {
	cfg := registryserver.DefaultConfig()
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	port := fs.Int("port", cfg.Port, "main (HTTP) port; gRPC listens on port+1000")
	grpcPort := fs.Int("grpc-port", 0, "gRPC port (default port+1000)")
	bind := fs.String("bind", cfg.Bind, "listen host")
	data := fs.String("data", cfg.DataDir, "data directory (Raft store)")
	file := fs.String("config", "", "JSON config file for the rest (flags override it)")
	members := fs.String("members", "", "registry cluster: every member's main-port host:port, this node included (comma-separated)")
	membersFile := fs.String("members-file", "", "registry cluster: a cluster.conf file, one member host:port a line")
	advertise := fs.String("advertise", "", "this node's address in the member list (default 127.0.0.1:PORT)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate: TLS on both ports (with -tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of -tls-cert")
	balance := fs.Duration("balance-interval", cfg.Balance.Interval, "registry cluster: how often members even out SDK connections (0: off; /nacos/v2/core/loader still works)")
	balanceFactor := fs.Float64("balance-factor", cfg.Balance.Factor, "registry cluster: shed connections above the members' average by more than this fraction")
	authOn := fs.Bool("auth", cfg.Auth.Enabled, "turn Nacos auth on (login, tokens, RBAC); the first start creates admin user nacos with $"+adminPasswordEnv+" or a generated password printed once")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *file != "" {
		if err := cfg.LoadFile(*file); err != nil {
			return cfg, err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "port":
			cfg.Port = *port
		case "grpc-port":
			cfg.GRPCPort = *grpcPort
		case "bind":
			cfg.Bind = *bind
		case "data":
			cfg.DataDir = *data
		case "advertise":
			cfg.Advertise = *advertise
		case "auth":
			cfg.Auth.Enabled = *authOn
		case "tls-cert":
			cfg.TLSCertFile = *tlsCert
		case "tls-key":
			cfg.TLSKeyFile = *tlsKey
		case "balance-interval":
			cfg.Balance.Interval = *balance
		case "balance-factor":
			cfg.Balance.Factor = *balanceFactor
		}
	})
	switch {
	case *members != "" && *membersFile != "":
		return cfg, fmt.Errorf("registry: -members and -members-file are exclusive")
	case *members != "":
		m, err := membership.ParseList(*members)
		if err != nil {
			return cfg, err
		}
		cfg.Members = m
	case *membersFile != "":
		f, err := os.Open(*membersFile)
		if err != nil {
			return cfg, fmt.Errorf("registry: -members-file: %w", err)
		}
		m, err := membership.ParseClusterConf(f)
		f.Close()
		if err != nil {
			return cfg, fmt.Errorf("registry: -members-file %s: %w", *membersFile, err)
		}
		cfg.Members = m
	}
	cfg.AdminPassword = os.Getenv(adminPasswordEnv)
	cfg.Notice = env.stdout
	return cfg, cfg.Validate()
}
