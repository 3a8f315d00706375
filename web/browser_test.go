package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferrysync/ferry/internal/browsertest"
	"github.com/ferrysync/ferry/store"
)

// In a real headless browser: log in through the form, preview app-1 →
// native with the exact numbers, confirm by typing the name, see the
// result; htmx runs under the console's CSP. Screenshots of each step are
// artefacts (never asserted on).
func TestBrowserLoginPreviewConfirm(t *testing.T) {
	b := browsertest.New(t, 90*time.Second)
	h := newHarness(t, nil)
	task := h.seed("w1", "w2")
	h.putCounts("w1", task,
		svcCount{"providers:com.a.A::", "app-1", 2, 2, 2, 0},
		svcCount{"providers:com.a.B::", "app-1", 1, 2, 1, 1},
		svcCount{"providers:com.b.C::", "app-2", 3, 3, 3, 0})

	b.Do("open the login form", chromedp.Navigate(h.base+"/apps"), chromedp.WaitVisible(`#login-form`))
	b.Shot("1-login")
	b.Do("log in", chromedp.SendKeys(`input[name=name]`, "operator-user"), chromedp.SendKeys(`input[name=password]`, "password-operator"),
		chromedp.Submit(`#login-form`), chromedp.WaitVisible(`#apps`))
	b.Shot("2-apps")
	// app-1's select offers native first (it is in sync mode).
	b.Do("preview app-1", chromedp.Click(`tr[data-app="app-1"] .preview-btn`), chromedp.WaitVisible(`.preview[data-app="app-1"] .vanish`))
	vanish, covered, empty := b.Text(`.preview[data-app="app-1"] .vanish`), b.Text(`.preview[data-app="app-1"] .covered`), b.Text(`.preview[data-app="app-1"] .empty-count`)
	b.Shot("3-preview")
	b.Do("confirm", chromedp.SendKeys(`.preview[data-app="app-1"] input[name=confirm]`, "app-1"),
		chromedp.Click(`.preview[data-app="app-1"] .confirm-btn`), chromedp.WaitVisible(`.result .applied`))
	applied := b.Text(`.result .applied`)
	b.Shot("4-applied")
	b.Do("filter native apps", chromedp.Navigate(h.base+"/apps?mode=native"), chromedp.WaitVisible(`tr[data-app="app-1"] .mode`))
	mode := b.Text(`tr[data-app="app-1"] .mode`)
	b.Shot("5-native-filter")
	if vanish != "3" || covered != "1" || empty != "1" {
		t.Fatalf("preview vanish %q covered %q empty %q; want 3, 1, 1", vanish, covered, empty)
	}
	if !strings.Contains(applied, "app-1: sync → native") || !strings.Contains(applied, "/2 live workers") {
		t.Fatalf("result %q", applied)
	}
	if mode != "native" {
		t.Fatalf("app-1 listed as %q after the change", mode)
	}
}

// The events page tails live: an event written after the page loaded
// shows up in its table without a reload, and the page's filter holds.
func TestBrowserEventsTail(t *testing.T) {
	b := browsertest.New(t, 90*time.Second)
	h := newHarness(t, nil)
	ctx := context.Background()
	if err := h.st.AppendEvents(ctx, store.Event{Kind: store.EventRegistered, Service: "providers:com.a.Old::", Worker: "w1", Detail: "before"}); err != nil {
		t.Fatal(err)
	}
	b.Do("log in", chromedp.Navigate(h.base+"/login?next=%2Fevents%3Fkind%3Dregistered"), chromedp.WaitVisible(`#login-form`),
		chromedp.SendKeys(`input[name=name]`, "viewer-user"), chromedp.SendKeys(`input[name=password]`, "password-viewer"),
		chromedp.Submit(`#login-form`), chromedp.WaitVisible(`#events`))
	b.Until(30*time.Second, "the first event listed", browsertest.TextHas(`#events tbody`, "providers:com.a.Old::"))
	// A marker that a reload would wipe.
	browsertest.Eval[bool](b, `window.ferryNoReload = true`)
	b.Shot("1-events")
	if err := h.st.AppendEvents(ctx,
		store.Event{Kind: store.EventError, Service: "providers:com.a.Filtered::", Worker: "w1", Detail: "other kind"},
		store.Event{Kind: store.EventRegistered, Service: "providers:com.a.New::", Worker: "w2", Detail: "after"}); err != nil {
		t.Fatal(err)
	}
	b.Until(time.Minute, "the new event tailed in", browsertest.TextHas(`#events tbody`, "providers:com.a.New::"))
	b.Shot("2-tailed")
	if !browsertest.Eval[bool](b, `window.ferryNoReload === true`) {
		t.Fatal("the page reloaded to show the new event")
	}
	if strings.Contains(b.Text(`#events tbody`), "providers:com.a.Filtered::") {
		t.Fatal("the live tail dropped the page's kind filter")
	}
}
