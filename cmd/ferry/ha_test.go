package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
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
func startFerry(t *testing.T, name string, args ...string) *exec.Cmd {
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

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func workerStatus(addr string) (worker.Status, error) {
	var st worker.Status
	resp, err := http.Get("http://" + addr + "/api/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func poll(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
	return time.Since(start)
}

// TestTwoWorkersKill9 is the HA contract on real parts: two `ferry sync`
// processes share one MariaDB; every service is registered by exactly one
// of them; SIGKILL one while a checker samples the registry every 100 ms:
// no synced instance is ever missing (through the registry's 30 s delete
// timeout), and the survivor owns every shard within the lease expiry.
func TestTwoWorkersKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("HA test takes about a minute")
	}
	db := mysqlserver.ForTest(t)
	zk := zkserver.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dsn, err := db.CreateDatabase(ctx, "ha")
	if err != nil {
		t.Fatal(err)
	}

	const services, instances = 20, 3
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zk.Addr()}
	lcfg.Services, lcfg.Instances = services, instances
	lcfg.WithNacosShare, lcfg.VersionShare, lcfg.GroupShare = 0, 0, 0
	loader, err := zkload.Connect(ctx, lcfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer loader.Close()
	if _, err := loader.Seed(ctx); err != nil {
		t.Fatal(err)
	}

	rcfg := registryserver.DefaultConfig()
	rcfg.Port = 0
	rcfg.DataDir = t.TempDir()
	reg, err := registryserver.Open(rcfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()

	// owners maps every synced instance to the worker its marker names.
	owners := func() map[string]string {
		out := map[string]string{}
		for _, k := range reg.Naming().Services() {
			info, err := reg.Naming().Select(k, nil, false)
			if err != nil {
				continue
			}
			for _, h := range info.Hosts {
				out[k.Name+"/"+h.IP+":"+fmt.Sprint(h.Port)] = h.Metadata["ferry.worker"]
			}
		}
		return out
	}

	addr1, addr2 := freeAddr(t), freeAddr(t)
	args := func(id, http string) []string {
		return []string{"sync", "-zk", zk.Addr(), "-registry", reg.HTTPAddr().String(), "-db", dsn, "-http", http, "-worker-id", id}
	}
	w1 := startFerry(t, "w1", args("w1", addr1)...)
	startFerry(t, "w2", args("w2", addr2)...)

	want := services * instances
	var diag string
	defer func() {
		if t.Failed() {
			t.Logf("last state: %s", diag)
		}
	}()
	poll(t, "both workers sharing the shards and every instance registered once", 60*time.Second, func() bool {
		s1, err1 := workerStatus(addr1)
		s2, err2 := workerStatus(addr2)
		o0 := owners()
		per := map[string]int{}
		for _, w := range o0 {
			per[w]++
		}
		diag = fmt.Sprintf("w1 %+v (%v); w2 %+v (%v); registry %d instances by marker %v", s1, err1, s2, err2, len(o0), per)
		if err1 != nil || err2 != nil || s1.OwnedKeys == 0 || s2.OwnedKeys == 0 || s1.OwnedKeys+s2.OwnedKeys != 256 {
			return false
		}
		o := owners()
		seen := map[string]bool{}
		for _, w := range o {
			seen[w] = true
		}
		return len(o) == want && seen["w1"] && seen["w2"] && len(seen) == 2
	})

	// Sample the registry every 100 ms from now until past the delete timeout.
	var minSeen atomic.Int64
	minSeen.Store(int64(want))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if n := int64(len(owners())); n < minSeen.Load() {
					minSeen.Store(n)
				}
			}
		}
	}()

	if err := w1.Process.Kill(); err != nil { // SIGKILL: no release, no goodbye
		t.Fatal(err)
	}
	killed := time.Now()
	// Lease expiry 10 s + one renew period 2 s, plus slack for a loaded CI box.
	took := poll(t, "w2 to own every shard", 20*time.Second, func() bool {
		s2, err := workerStatus(addr2)
		return err == nil && s2.OwnedKeys == 256
	})
	t.Logf("w2 owned all 256 shards %v after the SIGKILL", took.Round(time.Millisecond))
	poll(t, "every instance's marker to name w2", 20*time.Second, func() bool {
		for _, w := range owners() {
			if w != "w2" {
				return false
			}
		}
		return true
	})
	// Past the registry's 30 s delete timeout for beat-kept instances.
	if rest := 35*time.Second - time.Since(killed); rest > 0 {
		time.Sleep(rest) // observation window for the sampler, not synchronisation
	}
	close(stop)
	wg.Wait()
	if got := minSeen.Load(); got != int64(want) {
		t.Fatalf("an instance went missing after the SIGKILL: fewest seen %d, want %d", got, want)
	}
	if n := len(owners()); n != want {
		t.Fatalf("registry holds %d instances at the end, want %d", n, want)
	}
}
