package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/ferrysync/ferry/migrations"
	"github.com/ferrysync/ferry/store"
)

// runMigrate: ferry migrate [-db DSN] up|status
func runMigrate(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	dsn := fs.String("db", store.DefaultDSN, "store DSN: mysql://user:pass@tcp(host:port)/db or sqlite:///path/ferry.db")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: ferry migrate [-db DSN] up|status")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "up" && fs.Arg(0) != "status") {
		fs.Usage()
		return errors.New("want one of: up, status")
	}
	log := env.logger.With("cmd", "migrate")
	switch fs.Arg(0) {
	case "up":
		s, err := store.Open(ctx, *dsn, log)
		if err != nil {
			return err
		}
		defer s.Close()
		return printStatus(ctx, env, s)
	default:
		s, err := store.Open(ctx, *dsn, log, store.WithoutMigrate())
		if err != nil {
			return err
		}
		defer s.Close()
		return printStatus(ctx, env, s)
	}
}

func printStatus(ctx context.Context, env *cmdEnv, s *store.Store) error {
	st, err := s.MigrationStatus(ctx)
	if err != nil && !errors.Is(err, migrations.ErrSchemaTooNew) {
		return err
	}
	fmt.Fprintf(env.stdout, "database %s\n", s.DSN())
	w := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tNAME\tSTATE\tAPPLIED AT")
	for _, m := range st {
		state, at := "pending", ""
		if m.Applied {
			state, at = "applied", m.AppliedAt.Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
	}
	if ferr := w.Flush(); ferr != nil {
		return ferr
	}
	return err
}
