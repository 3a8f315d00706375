package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ferrysync/ferry/store"
)

// runUser manages console users in the store:
//
//	ferry user add   -db DSN -name NAME -role admin|operator|viewer   (password on stdin)
//	ferry user token -db DSN -name NAME [-label L]                    (prints a new API token alone on one line)
//	ferry user list  -db DSN
func runUser(ctx context.Context, env *cmdEnv, args []string) error {
	usage := func() {
		fmt.Fprintln(env.stderr, "usage: ferry user add -db DSN -name NAME -role admin|operator|viewer   (reads the password from stdin)")
		fmt.Fprintln(env.stderr, "       ferry user token -db DSN -name NAME [-label L]   (prints a new API token)")
		fmt.Fprintln(env.stderr, "       ferry user list -db DSN")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return errors.New("want a subcommand: add, token or list")
		}
		return flag.ErrHelp
	}
	sub := args[0]
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	dsn := fs.String("db", store.DefaultDSN, "store DSN: mysql://user:pass@tcp(host:port)/db or sqlite:///path/ferry.db")
	name := fs.String("name", "", "user name")
	var role, label *string
	switch sub {
	case "add":
		role = fs.String("role", "", "admin, operator or viewer")
	case "token":
		label = fs.String("label", "ferry user token", "what the token is for (shown in the console)")
	case "list":
	default:
		usage()
		return fmt.Errorf("unknown subcommand %q: want add, token or list", sub)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("user %s: unexpected argument %q", sub, fs.Arg(0))
	}
	if sub != "list" && *name == "" {
		return fmt.Errorf("user %s: -name is required", sub)
	}
	secrets, err := store.SecretsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, *dsn, env.logger.With("cmd", "user"), store.WithSecrets(secrets))
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "add":
		if store.Role(*role).Rank() == 0 {
			return fmt.Errorf("user add: -role %q: want admin, operator or viewer", *role)
		}
		line, err := bufio.NewReader(env.stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("user add: read the password from stdin: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		u, err := st.CreateUser(ctx, *name, store.Role(*role), pw, "ferry user add")
		if err != nil {
			return err
		}
		return st.AppendAudit(ctx, &store.AuditEntry{Actor: "ferry user add", Action: "user.create", Target: "user " + u.Name,
			After: store.AuditJSON(map[string]string{"role": string(u.Role)})})
	case "token":
		tok, err := st.CreateToken(ctx, *name, *label)
		if err != nil {
			return err
		}
		if err := st.AppendAudit(ctx, &store.AuditEntry{Actor: "ferry user token", Action: "token.create", Target: "user " + *name,
			After: store.AuditJSON(map[string]string{"label": *label})}); err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, tok)
		return nil
	default:
		us, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tUPDATED BY\tUPDATED")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, u.UpdatedBy, u.UpdatedAt.Format("2006-01-02 15:04:05"))
		}
		return tw.Flush()
	}
}
