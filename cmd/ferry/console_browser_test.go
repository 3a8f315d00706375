package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/browsertest"
	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/web"
)

// TestBrowserAppSwitchEndToEnd is the console's end-to-end test in a real
// headless browser: two `ferry sync` processes on MariaDB, real ZooKeeper
// seeded with two apps (10 services × 2 instances each), a registry node
// where one service of the first app also has a provider registered
// natively (withNacos=true in ZooKeeper, registered by itself in the
// registry). Log in through the form on worker 1, preview the first app →
// native and check the exact numbers, confirm by typing its name, see
// "applied on 2/2", see the registry lose the app's synced instances and
// keep the other app's and the native one; on worker 2's console see the
// same mode and the audit row; switch back there and see the instances
// return. Every wait is on DOM state or a polled condition with a
// generous deadline; screenshots of each step are artefacts.
func TestBrowserAppSwitchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real MariaDB, ZooKeeper, registry, two ferry sync processes and a browser")
	}
	b := browsertest.New(t, 5*time.Minute)
	const services, instances = 20, 2
	r := newHARig(t, services, instances)
	const opName, opPassword = "e2e-operator", "e2e-operator-password"
	func() {
		ctx := context.Background()
		st, err := store.Open(ctx, r.dsn, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.CreateUser(ctx, opName, store.RoleOperator, opPassword, "test"); err != nil {
			t.Fatal(err)
		}
	}()
	_, addr1, addr2, _ := r.twoWorkers(services * instances)
	app0, app1 := r.loader.Application(0), r.loader.Application(services-1)

	// Service 0 of app0 also has a native provider: in ZooKeeper with
	// withNacos=true (not synced), and registered by itself.
	const nativeIP = "10.99.0.1"
	svc0 := "providers:" + r.loader.Interface(0) + "::"
	nativeURL := strings.Replace(r.loader.ProviderURL(0, 0, time.Now().UnixMilli()), r.loader.Host(0, 0)+":20880", nativeIP+":20880", 1) + "&withNacos=true"
	if _, err := r.loader.Conn().Create(r.loader.ProviderPath(0, nativeURL), nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	registerNative(t, r, svc0, nativeIP, 20880)

	// count: app0's and app1's synced instances, and whether the native
	// one is there (a consumer's healthy view).
	count := func() (a0, a1 int, native bool) {
		for k, w := range r.healthy() {
			switch {
			case k == svc0+"/"+nativeIP+":20880":
				native = true
			case w == "":
			case strings.Contains(k, ".app0000."):
				a0++
			case strings.Contains(k, ".app0001."):
				a1++
			}
		}
		return a0, a1, native
	}
	poll.Every(t, time.Minute, httpPoll, "the native instance registered next to the synced ones", func() bool {
		a0, a1, native := count()
		return a0 == 20 && a1 == 20 && native
	})
	// The workers count every few seconds: wait until the counts know the
	// native provider, so the preview's numbers are settled.
	poll.Every(t, time.Minute, httpPoll, "the counts know the native provider", func() bool {
		var p web.Preview
		code := apiCall(t, "GET", "http://"+addr1+"/api/v1/apps/"+app0+"/preview?mode=native", r.token, nil, &p)
		return code == 200 && p.Covered == 1 && p.Vanish == 20
	})

	row := fmt.Sprintf(`tr[data-app=%q]`, app0)
	pv := fmt.Sprintf(`.preview[data-app=%q]`, app0)
	b.Do("open worker 1's console", chromedp.Navigate("http://"+addr1+"/apps"), chromedp.WaitVisible(`#login-form`))
	b.Shot("01-login")
	b.Do("log in through the form", chromedp.SendKeys(`input[name=name]`, opName), chromedp.SendKeys(`input[name=password]`, opPassword),
		chromedp.Submit(`#login-form`), chromedp.WaitVisible(row))
	b.Shot("02-apps")
	b.Do("preview "+app0+" → native", chromedp.SetValue(row+` select[name=mode]`, "native"), chromedp.Click(row+` .preview-btn`),
		chromedp.WaitVisible(pv+` .vanish`))
	vanish, covered, empty := b.Text(pv+` .vanish`), b.Text(pv+` .covered`), b.Text(pv+` .empty-count`)
	b.Shot("03-preview")
	if vanish != "20" || covered != "1" || empty != "9" {
		t.Fatalf("preview of %s → native: vanish %s, covered %s, left empty %s; want 20, 1, 9", app0, vanish, covered, empty)
	}
	if s := b.Text(pv + ` ul.empty`); strings.Contains(s, svc0) {
		t.Fatalf("%s is covered by its native instance, yet listed as left empty: %s", svc0, s)
	}
	start := time.Now()
	b.Do("confirm by typing the app name", chromedp.SendKeys(pv+` input[name=confirm]`, app0), chromedp.Click(pv+` .confirm-btn`),
		chromedp.WaitVisible(`.result .applied`))
	if s := b.Text(`.result .applied`); !strings.Contains(s, app0+": sync → native") {
		t.Fatalf("result: %q", s)
	}
	b.Until(2*time.Minute, "applied on 2/2 live workers", browsertest.TextHas(`.result .following`, "applied on 2/2 live workers"))
	b.Shot("04-applied")
	poll.Every(t, time.Minute, httpPoll, app0+"'s synced instances gone, "+app1+"'s and the native one kept", func() bool {
		a0, a1, native := count()
		if a1 != 20 || !native {
			t.Fatalf("%s has %d synced instances, native one there: %v", app1, a1, native)
		}
		return a0 == 0
	})
	t.Logf("native switch confirmed in the browser reached the registry in %v", time.Since(start))

	// Worker 2's console (the session cookie is the store's: the same
	// login works on every replica) shows the mode and the audit row.
	b.Do("open worker 2's apps", chromedp.Navigate("http://"+addr2+"/apps?search="+url.QueryEscape(app0)), chromedp.WaitVisible(row+` .mode`))
	if m := b.Text(row + ` .mode`); m != "native" {
		t.Fatalf("worker 2 shows %s as %q", app0, m)
	}
	b.Shot("05-worker2-apps")
	b.Do("open worker 2's audit", chromedp.Navigate("http://"+addr2+"/audit?"+url.Values{"target": {"app " + app0}}.Encode()), chromedp.WaitVisible(`#audit`))
	audit := b.Text(`#audit tbody`)
	b.Shot("06-worker2-audit")
	if !strings.Contains(audit, opName) || !strings.Contains(audit, "native") || strings.Count(audit, "app "+app0) != 1 {
		t.Fatalf("worker 2's audit of %s: %q", app0, audit)
	}

	// Switch back on worker 2: the instances return.
	b.Do("open worker 2's apps again", chromedp.Navigate("http://"+addr2+"/apps?search="+url.QueryEscape(app0)), chromedp.WaitVisible(row))
	b.Do("preview "+app0+" → sync", chromedp.SetValue(row+` select[name=mode]`, "sync"), chromedp.Click(row+` .preview-btn`),
		chromedp.WaitVisible(pv+` .restore`))
	b.Shot("07-preview-back")
	if e := b.Text(pv + ` .vanish`); e != "0" {
		t.Fatalf("switching back would remove %s instances", e)
	}
	start = time.Now()
	b.Do("confirm the switch back", chromedp.Click(pv+` .confirm-btn`), chromedp.WaitVisible(`.result .applied`))
	b.Until(2*time.Minute, "applied on 2/2 live workers", browsertest.TextHas(`.result .following`, "applied on 2/2 live workers"))
	b.Shot("08-applied-back")
	poll.Every(t, time.Minute, httpPoll, app0+"'s instances back", func() bool {
		a0, a1, native := count()
		return a0 == 20 && a1 == 20 && native
	})
	t.Logf("switch back reached the registry in %v", time.Since(start))
}

// registerNative registers ip:port in service svc the way a provider
// that registers itself does: a Nacos 2.x connection-bound instance,
// alive while the test runs.
func registerNative(t *testing.T, r *haRig, svc, ip string, port int) {
	t.Helper()
	cfg := registryclient.DefaultConfig()
	cfg.Servers = []string{r.reg.HTTPAddr().String()}
	cfg.AppName = "native-provider"
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Registerer = prometheus.NewRegistry()
	cl, err := registryclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.Register(ctx, registryclient.ServiceRef{Name: svc}, registryclient.Instance{IP: ip, Port: port,
		Metadata: map[string]string{"side": "provider", "registered": "natively"}}); err != nil {
		t.Fatal(err)
	}
}
