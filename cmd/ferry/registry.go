package main

import (
	"context"
	"flag"
	"fmt"

	registryserver "github.com/ferrysync/ferry/registry-server"
)

// runRegistry runs one registry node until ctx ends.
//
//	ferry registry [-port 8848] [-grpc-port 0] [-bind 127.0.0.1] [-data ./data/registry] [-config file.json]
//
// The config file (JSON, see README "## registry") sets the rest; flags
// given on the command line override it.
func runRegistry(ctx context.Context, env *cmdEnv, args []string) error {
	cfg, err := registryConfig(args, env)
	if err != nil {
		return err
	}
	s, err := registryserver.New(cfg, env.logger, nil)
	if err != nil {
		return err
	}
	// The Raft store, the health prober and the HTTP open API are wired in
	// here (s.AddComponent, s.SetPersistentStore, s.Mount) when they land.
	if err := s.Start(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "registry: HTTP %s, gRPC %s\n", s.HTTPAddr(), s.GRPCAddr())
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
		}
	})
	return cfg, cfg.Validate()
}
