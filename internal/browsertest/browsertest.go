// Package browsertest drives a real headless browser (Debian's
// chromium-headless-shell, or chromium) for the console's end-to-end
// tests, through github.com/chromedp/chromedp: one way to find the
// browser, start it, run steps with a deadline, read the DOM, wait on DOM
// state and save screenshots as test artefacts (never asserted on).
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path finds the browser; none skips the test, or fails it with CI=true.
func Path(t testing.TB) string {
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

// Session is one browser tab for one test. Its methods are called from
// the test's goroutine.
type Session struct {
	t   testing.TB
	ctx context.Context
	dir string
}

// New starts a browser (skipping the test without one) whose whole use is
// bounded by timeout; it stops with the test. Screenshots go to
// $FERRY_TEST_ARTIFACTS/<test> when set (CI keeps them), else to a
// temporary directory.
func New(t testing.TB, timeout time.Duration) *Session {
	t.Helper()
	bin := Path(t)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()))...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	dir := t.TempDir()
	if a := os.Getenv("FERRY_TEST_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &Session{t: t, ctx: ctx, dir: dir}
}

// Context is the tab's context (for chromedp calls of the test's own).
func (s *Session) Context() context.Context { return s.ctx }

// Shot saves a screenshot named name (a failure is logged, never fatal).
func (s *Session) Shot(name string) {
	s.t.Helper()
	buf, err := chromedp.Run(s.ctx, chromedp.FullScreenshot(80))
	if err == nil {
		err = os.WriteFile(filepath.Join(s.dir, name+".jpg"), buf, 0o644)
	}
	if err != nil {
		s.t.Logf("screenshot %s: %v", name, err)
	}
}

// Do runs steps; a failure saves a screenshot and fails the test.
func (s *Session) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(s.ctx, steps...); err != nil {
		s.Shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		if errors.Is(err, context.DeadlineExceeded) {
			s.t.Fatalf("%s: timed out (screenshots in %s)", what, s.dir)
		}
		s.t.Fatalf("%s: %v", what, err)
	}
}

// Text is the trimmed text of the first node matching sel (waiting for
// it to be visible).
func (s *Session) Text(sel string) string {
	s.t.Helper()
	v, err := chromedp.Run(s.ctx, chromedp.Text(sel))
	if err != nil {
		s.Shot("failed-text")
		s.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(v)
}

// Eval evaluates a JavaScript expression and returns its value.
func Eval[T any](s *Session, expr string) T {
	s.t.Helper()
	v, err := chromedp.Run(s.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		s.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Until waits until the JavaScript predicate expr is truthy in the page,
// evaluated by the browser every 100 ms up to d (a DOM wait, not a sleep;
// it does not survive a navigation); on failure it saves a screenshot and
// fails naming what.
func (s *Session) Until(d time.Duration, what, expr string) {
	s.t.Helper()
	s.Do(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(d)))
}

// TextIs is a predicate for Until: the trimmed text of the first node
// matching sel is want.
func TextIs(sel, want string) string {
	return fmt.Sprintf(`(function(){var e=document.querySelector(%q);return !!e && e.textContent.trim()===%q})()`, sel, want)
}

// TextHas is a predicate for Until: the first node matching sel contains
// part.
func TextHas(sel, part string) string {
	return fmt.Sprintf(`(function(){var e=document.querySelector(%q);return !!e && e.textContent.indexOf(%q)>=0})()`, sel, part)
}
