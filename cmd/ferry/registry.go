package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

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
	cfg, membersFile, err := registryConfigFile(args, env)
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
	if membersFile != "" {
		watchMembersFile(ctx, env, s, membersFile, cfg.Members)
	}
	<-ctx.Done()
	s.Stop()
	return nil
}

// membersFilePoll is how often -members-file is checked for a change
// (SIGHUP re-reads it at once).
const membersFilePoll = 2 * time.Second

// watchMembersFile re-reads the cluster.conf on SIGHUP and when its
// content changes (checked every membersFilePoll), and makes a changed
// list the cluster's (registryserver.Server.ChangeMembers: carried out by
// the Raft leader). A refused or unreadable list is logged once per
// content and left; the member keeps its list.
func watchMembersFile(ctx context.Context, env *cmdEnv, s *registryserver.Server, path string, start []string) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		t := time.NewTicker(membersFilePoll)
		defer t.Stop()
		last := strings.Join(membership.Sorted(start), ",") // the list last acted on
		for {
			force := false
			select {
			case <-ctx.Done():
				return
			case <-hup:
				force = true
			case <-t.C:
			}
			f, err := os.Open(path)
			if err != nil {
				if force {
					env.logger.Error("registry: -members-file", "err", err)
				}
				continue
			}
			list, err := membership.ParseClusterConf(f)
			f.Close()
			key := strings.Join(membership.Sorted(list), ",")
			if err != nil {
				if force || key != last {
					env.logger.Error("registry: -members-file: the member list is left as it was", "file", path, "err", err)
				}
				last = key
				continue
			}
			if key == last && !force {
				continue
			}
			last = key
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = s.ChangeMembers(cctx, list)
			cancel()
			if err != nil {
				env.logger.Error("registry: -members-file: member list change refused; the list is left as it was", "file", path, "members", key, "err", err)
				continue
			}
			env.logger.Info("registry: member list changed from -members-file", "file", path, "members", key)
		}
	}()
}

// registryConfig builds the config: defaults, then the file, then the
// flags that were given.
func registryConfig(args []string, env *cmdEnv) (registryserver.Config, error) {
	cfg, _, err := registryConfigFile(args, env)
	return cfg, err
}

// registryConfigFile is registryConfig, also returning -members-file.
func registryConfigFile(args []string, env *cmdEnv) (registryserver.Config, string, error) {
	cfg := registryserver.DefaultConfig()
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	port := fs.Int("port", cfg.Port, "main (HTTP) port; gRPC listens on port+1000")
	grpcPort := fs.Int("grpc-port", 0, "gRPC port (default port+1000)")
	bind := fs.String("bind", cfg.Bind, "listen host")
	data := fs.String("data", cfg.DataDir, "data directory (Raft store)")
	file := fs.String("config", "", "JSON config file for the rest (flags override it)")
	members := fs.String("members", "", "registry cluster: every member's main-port host:port, this node included (comma-separated)")
	membersFile := fs.String("members-file", "", "registry cluster: a cluster.conf file, one member host:port a line; re-read on SIGHUP and on change (the Raft leader adds or removes members)")
	advertise := fs.String("advertise", "", "this node's address in the member list (default 127.0.0.1:PORT)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate: TLS on both ports (with -tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of -tls-cert")
	balance := fs.Duration("balance-interval", cfg.Balance.Interval, "registry cluster: how often members even out SDK connections (0: off; /nacos/v2/core/loader still works)")
	balanceFactor := fs.Float64("balance-factor", cfg.Balance.Factor, "registry cluster: shed connections above the members' average by more than this fraction")
	authOn := fs.Bool("auth", cfg.Auth.Enabled, "turn Nacos auth on (login, tokens, RBAC); the first start creates admin user nacos with $"+adminPasswordEnv+" or a generated password printed once")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if *file != "" {
		if err := cfg.LoadFile(*file); err != nil {
			return cfg, "", err
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
		return cfg, "", fmt.Errorf("registry: -members and -members-file are exclusive")
	case *members != "":
		m, err := membership.ParseList(*members)
		if err != nil {
			return cfg, "", err
		}
		cfg.Members = m
	case *membersFile != "":
		f, err := os.Open(*membersFile)
		if err != nil {
			return cfg, "", fmt.Errorf("registry: -members-file: %w", err)
		}
		m, err := membership.ParseClusterConf(f)
		f.Close()
		if err != nil {
			return cfg, "", fmt.Errorf("registry: -members-file %s: %w", *membersFile, err)
		}
		cfg.Members = m
	}
	cfg.AdminPassword = os.Getenv(adminPasswordEnv)
	cfg.Notice = env.stdout
	return cfg, *membersFile, cfg.Validate()
}
