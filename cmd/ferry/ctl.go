package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferrysync/ferry/syncer/worker"
	"github.com/ferrysync/ferry/web"
)

// tokenEnv holds the API token of `ferry ctl` (or -token).
const tokenEnv = "FERRY_TOKEN"

// ctlClient calls one console's /api/v1 with a bearer token.
type ctlClient struct {
	server, token string
	http          *http.Client
}

// ctlError is a refused call: the API's error body and status.
type ctlError struct {
	status int
	body   web.Error
}

func (e *ctlError) Error() string {
	msg := fmt.Sprintf("%d %s: %s", e.status, e.body.Code, e.body.Message)
	if e.body.Field != "" {
		msg += " (field " + e.body.Field + ")"
	}
	return msg
}

func (c *ctlClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.server, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &ctlError{status: resp.StatusCode}
		if json.Unmarshal(raw, &e.body) != nil || e.body.Code == "" {
			e.body.Code, e.body.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(raw))
		}
		return e
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if r, ok := out.(*json.RawMessage); ok {
		*r = raw
		return nil
	}
	return json.Unmarshal(raw, out)
}

// runCtl drives a console from the shell:
//
//	ferry ctl [-server URL] [-token T] apps [-mode M] [-search S] [-json]
//	ferry ctl [-server URL] [-token T] app set NAME sync|native|excluded [-force]
//	ferry ctl [-server URL] [-token T] events [-kind K] [-service S] [-app A] [-worker W] [-task N] [-limit N] [-json]
//
// The token is -token or $FERRY_TOKEN (`ferry user token` prints one).
func runCtl(ctx context.Context, env *cmdEnv, args []string) error {
	defServer := "http://" + worker.DefaultConfig().HTTP
	common := func(fs *flag.FlagSet, server, token *string) {
		fs.StringVar(server, "server", *server, "console base URL")
		fs.StringVar(token, "token", *token, "API token (default $"+tokenEnv+")")
	}
	server, token := defServer, os.Getenv(tokenEnv)
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	common(fs, &server, &token)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: ferry ctl [-server URL] [-token T] apps|app set NAME MODE|events [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errors.New("want a subcommand: apps, app set, events")
	}
	sub, rest := rest[0], rest[1:]
	if sub == "app" {
		if len(rest) == 0 || rest[0] != "set" {
			return errors.New("usage: ferry ctl app set NAME sync|native|excluded [-force]")
		}
		sub, rest = "app set", rest[1:]
	}
	sfs := flag.NewFlagSet("ctl "+sub, flag.ContinueOnError)
	sfs.SetOutput(env.stderr)
	common(sfs, &server, &token)
	asJSON := sfs.Bool("json", false, "print the API's JSON answer")
	var mode, search, kind, service, app, workerID *string
	var force *bool
	var task, limit *int64
	switch sub {
	case "apps":
		mode = sfs.String("mode", "", "only apps in this mode")
		search = sfs.String("search", "", "only apps whose name contains this")
	case "app set":
		force = sfs.Bool("force", false, "apply even if services are left with no instance in the registry")
	case "events":
		kind = sfs.String("kind", "", "event kind")
		service = sfs.String("service", "", "registry service name")
		app = sfs.String("app", "", "app (its services)")
		workerID = sfs.String("worker", "", "worker id")
		task = sfs.Int64("task", 0, "task id")
		limit = sfs.Int64("limit", 50, "how many, newest first")
	default:
		fs.Usage()
		return fmt.Errorf("unknown subcommand %q: want apps, app set, events", sub)
	}
	// Flags may come before or after the positional arguments.
	var pos []string
	for {
		if err := sfs.Parse(rest); err != nil {
			return err
		}
		if sfs.NArg() == 0 {
			break
		}
		pos = append(pos, sfs.Arg(0))
		rest = sfs.Args()[1:]
	}
	if token == "" {
		return fmt.Errorf("ctl: no API token: give -token or set %s (ferry user token prints one)", tokenEnv)
	}
	c := &ctlClient{server: server, token: token, http: &http.Client{Timeout: 30 * time.Second}}
	switch sub {
	case "apps":
		if len(pos) > 0 {
			return fmt.Errorf("ctl apps: unexpected argument %q", pos[0])
		}
		q := url.Values{}
		if *mode != "" {
			q.Set("mode", *mode)
		}
		if *search != "" {
			q.Set("search", *search)
		}
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/api/v1/apps?"+q.Encode(), nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return printRaw(env, raw)
		}
		var list struct {
			Apps []web.AppView `json:"apps"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tMODE\tZK\tSYNCED\tNATIVE\tFAILING\tCHANGED BY")
		for _, a := range list.Apps {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", shellSafe(a.Name), a.Mode, a.ZK, a.Synced, a.Native, a.Failing, shellSafe(a.ChangedBy))
		}
		return tw.Flush()
	case "app set":
		if len(pos) != 2 {
			return errors.New("usage: ferry ctl app set NAME sync|native|excluded [-force]")
		}
		var raw json.RawMessage
		err := c.do(ctx, "PUT", "/api/v1/apps/"+url.PathEscape(pos[0]), map[string]any{"mode": pos[1], "force": *force}, &raw)
		var ce *ctlError
		if errors.As(err, &ce) && ce.body.Preview != nil {
			p := ce.body.Preview
			fmt.Fprintf(env.stderr, "refused: %s\n  %d synced instance(s) would vanish, %d native instance(s) cover them; left empty:\n",
				ce.body.Message, p.Vanish, p.Covered)
			for _, s := range p.EmptyServices {
				fmt.Fprintf(env.stderr, "    %s\n", shellSafe(s))
			}
			return errors.New("not applied (run again with -force to accept)")
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return printRaw(env, raw)
		}
		var res web.AppChangeResult
		if err := json.Unmarshal(raw, &res); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "app %s: %s -> %s (version %d); %d synced instance(s) leave, %d return; settings generation %d, applied by %d/%d live workers so far\n",
			shellSafe(res.App.Name), res.Preview.From, res.App.Mode, res.App.Version, res.Preview.Vanish, res.Preview.Restore,
			res.Applied.Generation, res.Applied.AppliedBy, res.Applied.LiveWorkers)
		return nil
	default: // events
		if len(pos) > 0 {
			return fmt.Errorf("ctl events: unexpected argument %q", pos[0])
		}
		q := url.Values{}
		for k, v := range map[string]string{"kind": *kind, "service": *service, "app": *app, "worker": *workerID} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if *task > 0 {
			q.Set("task", strconv.FormatInt(*task, 10))
		}
		q.Set("limit", strconv.FormatInt(*limit, 10))
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/api/v1/events?"+q.Encode(), nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return printRaw(env, raw)
		}
		var page web.EventPage
		if err := json.Unmarshal(raw, &page); err != nil {
			return err
		}
		for _, e := range page.Events {
			fmt.Fprintf(env.stdout, "%s  %-22s %s %s %s %s\n", e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Kind,
				shellSafe(e.Service), shellSafe(e.Instance), shellSafe(e.Worker), shellSafe(e.Detail))
		}
		return nil
	}
}

func printRaw(env *cmdEnv, raw []byte) error {
	_, err := env.stdout.Write(append(bytes.TrimSpace(raw), '\n'))
	return err
}

// shellSafe quotes control characters, so a name from ZooKeeper cannot
// drive the operator's terminal.
func shellSafe(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			q := strconv.QuoteToGraphic(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}
