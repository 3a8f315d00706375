package web

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserPath finds Debian's chromium-headless-shell (or chromium); none
// skips the test, or fails it with CI=true.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium-headless-shell", "chromium", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no headless browser (chromium-headless-shell): make test-deps installs it")
	}
	t.Skip("no headless browser (chromium-headless-shell)")
	return ""
}

// In a real headless browser: log in through the form, preview app-1 →
// native with the exact numbers, confirm by typing the name, see the
// result; htmx runs under the console's CSP. Screenshots of each step are
// artefacts (never asserted on).
func TestBrowserLoginPreviewConfirm(t *testing.T) {
	bin := browserPath(t)
	h := newHarness(t, nil)
	task := h.seed("w1", "w2")
	h.putCounts("w1", task,
		svcCount{"providers:com.a.A::", "app-1", 2, 2, 2, 0},
		svcCount{"providers:com.a.B::", "app-1", 1, 2, 1, 1},
		svcCount{"providers:com.b.C::", "app-2", 3, 3, 3, 0})

	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	// Screenshots go to $FERRY_TEST_ARTIFACTS/<test> when set (CI keeps
	// them), else to a temporary directory.
	dir := t.TempDir()
	if a := os.Getenv("FERRY_TEST_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(80))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name+".jpg"), buf, 0o644)
		}
		if err != nil {
			t.Logf("screenshot %s: %v", name, err)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot("failed-" + strings.ReplaceAll(what, " ", "-"))
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: timed out (screenshots in %s)", what, dir)
			}
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	do("open the login form", chromedp.Navigate(h.base+"/apps"), chromedp.WaitVisible(`#login-form`))
	shot("1-login")
	do("log in", chromedp.SendKeys(`input[name=name]`, "operator-user"), chromedp.SendKeys(`input[name=password]`, "password-operator"),
		chromedp.Submit(`#login-form`), chromedp.WaitVisible(`#apps`))
	shot("2-apps")
	// app-1's select offers native first (it is in sync mode).
	do("preview app-1", chromedp.Click(`tr[data-app="app-1"] .preview-btn`), chromedp.WaitVisible(`.preview[data-app="app-1"] .vanish`))
	vanish, covered, empty := text(`.preview[data-app="app-1"] .vanish`), text(`.preview[data-app="app-1"] .covered`), text(`.preview[data-app="app-1"] .empty-count`)
	shot("3-preview")
	do("confirm", chromedp.SendKeys(`.preview[data-app="app-1"] input[name=confirm]`, "app-1"),
		chromedp.Click(`.preview[data-app="app-1"] .confirm-btn`), chromedp.WaitVisible(`.result .applied`))
	applied := text(`.result .applied`)
	shot("4-applied")
	do("filter native apps", chromedp.Navigate(h.base+"/apps?mode=native"), chromedp.WaitVisible(`tr[data-app="app-1"] .mode`))
	mode := text(`tr[data-app="app-1"] .mode`)
	shot("5-native-filter")
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
