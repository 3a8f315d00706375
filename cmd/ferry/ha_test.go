package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/syncer/worker"
)

// TestMain lets a test start this binary as `ferry` (a real child process
// that can be killed with SIGKILL): FERRY_TEST_ARGS holds its arguments.
func TestMain(m *testing.M) {
	if a := os.Getenv("FERRY_TEST_ARGS"); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, "FERRY_TEST_ARGS:", err)
			os.Exit(2)
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startFerry runs `ferry args...` as a child process, output to a file.
func startFerry(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FERRY_TEST_ARGS="+string(a))
	out, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("%s output (tail):\n%s", name, tailString(string(b), 3000))
		}
	})
	return cmd
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// workerStatus asks a worker's console for /api/status with an API token
// (consoleToken).
func workerStatus(addr, token string) (worker.Status, error) {
	var st worker.Status
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/api/status", nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/api/status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// consoleToken creates a viewer and an API token for it in the store at
// dsn (migrating it first), the way `ferry user add` and `ferry user
// token` do.
func consoleToken(t testing.TB, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateUser(ctx, "test-viewer", store.RoleViewer, "test-viewer-password", "test"); err != nil && !errors.Is(err, store.ErrConflict) {
		t.Fatal(err)
	}
	tok, err := st.CreateToken(ctx, "test-viewer", "test")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// httpPoll is how often the real-process tests ask a worker or the
// registry (poll.Every): a consumer's rate, not a busy loop.
const httpPoll = 100 * time.Millisecond

// TestTwoWorkersKill9 is the HA contract on real parts: two `ferry sync`
// processes share one MariaDB; every service is registered by exactly one
// of them; SIGKILL one under 100 ZooKeeper changes/s of churn (providers
// restarting on the same ip:port) while a consumer's healthy-only view is
// sampled every 100 ms: no instance is ever missing or unhealthy (through
// the registry's 30 s delete timeout), the survivor owns every shard within
// the lease TTL and its view is exact once the churn stops.
func TestTwoWorkersKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("HA test takes about a minute")
	}
	const services, instances = 50, 4
	r := newHARig(t, services, instances)
	want := services * instances
	w1, _, addr2, must := r.twoWorkers(want)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	churnDone := make(chan error, 1)
	go func() {
		churnDone <- r.loader.Churn(ctx, zkload.ChurnConfig{Rate: 100, RemoveAfter: 500 * time.Millisecond})
	}()
	smp := r.sample(must)
	time.Sleep(2 * time.Second) // let the churn run before the kill (load, not synchronisation)

	if err := w1.Process.Kill(); err != nil { // SIGKILL: no release, no goodbye
		t.Fatal(err)
	}
	killed := time.Now()
	moved := poll.Every(t, 20*time.Second, httpPoll, "w2 to own every shard", func() bool {
		s2, err := workerStatus(addr2, r.token)
		return err == nil && s2.OwnedKeys == 256
	})
	beaten := poll.Every(t, 20*time.Second, httpPoll, "every instance's marker to name w2", func() bool {
		for _, w := range r.healthy() {
			if w != "w2" {
				return false
			}
		}
		return true
	})
	t.Logf("after the SIGKILL: every lease moved in %v, every moved instance re-registered by w2 %v later",
		moved.Round(time.Millisecond), beaten.Round(time.Millisecond))
	// Past the registry's 30 s delete timeout for beat-kept instances.
	if rest := 35*time.Second - time.Since(killed); rest > 0 {
		time.Sleep(rest) // observation window for the sampler, not synchronisation
	}
	cancel()
	if err := <-churnDone; err != nil {
		t.Fatal(err)
	}
	smp.done(t)
	r.waitExact(want)
}

// waitExact waits until the registry's healthy view is exactly ZooKeeper's:
// one instance per provider address, with the newest node's timestamp.
func (r *haRig) waitExact(want int) {
	r.t.Helper()
	var diag string
	defer func() {
		if r.t.Failed() {
			r.t.Log(diag)
		}
	}()
	poll.Every(r.t, 30*time.Second, httpPoll, "the registry to match ZooKeeper exactly", func() bool {
		zkTS := map[string]string{}
		for i := 0; i < r.services; i++ {
			dir := r.loader.ServicePath(i) + "/providers"
			kids, _, err := r.loader.Conn().Children(dir)
			if err != nil {
				diag = err.Error()
				return false
			}
			for _, k := range kids {
				u, err := url.QueryUnescape(k)
				if err != nil {
					continue
				}
				pu, err := url.Parse(u)
				if err != nil {
					continue
				}
				key := "providers:" + r.loader.Interface(i) + "::/" + pu.Host
				if ts := pu.Query().Get("timestamp"); ts > zkTS[key] {
					zkTS[key] = ts
				}
			}
		}
		got := r.healthyMeta("timestamp")
		if len(zkTS) != want || len(got) != want {
			diag = fmt.Sprintf("zookeeper %d, registry %d", len(zkTS), len(got))
			return false
		}
		for k, ts := range zkTS {
			if got[k] != ts {
				diag = fmt.Sprintf("%s: registry timestamp %s, zookeeper %s", k, got[k], ts)
				return false
			}
		}
		return true
	})
}

// TestWorkerStoppedAndContinued: a worker frozen (SIGSTOP) for 30 s, longer
// than its leases and the registry's unhealthy timeout, then continued
// (SIGCONT). Its successor takes its shards over before anything turns
// unhealthy; the continued worker must not act on the leases it lost (no
// stray deregistration, no registration flapping the survivor's
// instances): a healthy-only view sampled every 100 ms misses nothing and
// ends exactly as ZooKeeper, with the two workers sharing the shards again.
func TestWorkerStoppedAndContinued(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a minute")
	}
	const services, instances = 20, 3
	r := newHARig(t, services, instances)
	want := services * instances
	w1, addr1, addr2, must := r.twoWorkers(want)
	smp := r.sample(must)
	if err := w1.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	continued := false
	defer func() {
		if !continued {
			_ = w1.Process.Signal(syscall.SIGCONT)
		}
	}()
	poll.Every(t, 30*time.Second, httpPoll, "w2 to own every shard and every instance to name w2", func() bool {
		s2, err := workerStatus(addr2, r.token)
		if err != nil || s2.OwnedKeys != 256 {
			return false
		}
		for _, w := range r.healthy() {
			if w != "w2" {
				return false
			}
		}
		return true
	})
	if rest := 30*time.Second - time.Since(stopped); rest > 0 {
		time.Sleep(rest) // the freeze lasts 30 s; the sampler runs meanwhile
	}
	if err := w1.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	continued = true
	// w1 comes back, learns its leases are gone, and gets its share anew.
	r.waitShared([]string{addr1, addr2}, want)
	poll.Every(t, 30*time.Second, httpPoll, "both workers' markers in the registry again", func() bool {
		seen := map[string]bool{}
		for _, w := range r.healthy() {
			seen[w] = true
		}
		return seen["w1"] && seen["w2"] && len(seen) == 2
	})
	smp.done(t)
	r.waitExact(want)
}
