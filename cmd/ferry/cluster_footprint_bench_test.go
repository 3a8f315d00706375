package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/registryclient"
)

// BenchmarkRegistryCluster30k: 30,000 beat-kept instances (3,000
// services × 10) registered through one registryclient (merged beats,
// registerIfUnknown) into one `ferry registry` process and into a
// three-member cluster; reports registrations/s until every member holds
// them all, then each member's RSS and CPU over a steady 10 s window with
// the merged beats flowing (6,000 beats/s: registryclient's default 5 s
// beat period, one merged batch per member each second).
//
//	go test -run '^$' -bench RegistryCluster30k -benchtime 1x ./cmd/ferry/
func BenchmarkRegistryCluster30k(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			for range b.N {
				footprint30k(b, nodes)
			}
		})
	}
}

func footprint30k(b *testing.B, nodes int) {
	const services, perService = 3000, 10
	ports := clusterPorts(b, nodes)
	var members []string
	for _, p := range ports {
		members = append(members, "127.0.0.1:"+strconv.Itoa(p))
	}
	pids := map[string]int{}
	for i, p := range ports {
		args := []string{"registry", "-port", strconv.Itoa(p), "-data", filepath.Join(b.TempDir(), "data")}
		if nodes > 1 {
			args = append(args, "-members", strings.Join(members, ","), "-advertise", members[i])
		}
		pids[members[i]] = startFerry(b, fmt.Sprintf("registry-%d", i), args...).Process.Pid
	}
	poll.Every(b, 90*time.Second, httpPoll, "every member ready", func() bool {
		for _, a := range members {
			if code, _, err := httpDo("GET", "http://"+a+"/nacos/ready"); err != nil || code != 200 {
				return false
			}
		}
		return true
	})
	cfg := registryclient.DefaultConfig()
	cfg.Servers = members
	c, err := registryclient.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	for s := range services {
		insts := make([]registryclient.Instance, perService)
		for i := range insts {
			insts[i] = registryclient.Instance{IP: fmt.Sprintf("10.%d.%d.%d", 20+s/250, s%250, i+1), Port: 20880, Weight: 1}
		}
		if err := c.Keep(ctx, registryclient.ServiceRef{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("providers:com.example.Svc%d::", s)}, insts); err != nil {
			b.Fatal(err)
		}
	}
	poll.Every(b, 3*time.Minute, 200*time.Millisecond, "every member holds 30k instances", func() bool {
		for _, a := range members {
			if beatInstances(a) < services*perService {
				return false
			}
		}
		return true
	})
	took := time.Since(start)
	b.ReportMetric(float64(services*perService)/took.Seconds(), "registrations/s")
	cpu0 := map[string]time.Duration{}
	for m, pid := range pids {
		cpu0[m] = procCPU(pid)
	}
	window := time.Now()
	time.Sleep(10 * time.Second) // the measurement window (beats flowing), not synchronisation
	el := time.Since(window)
	for i, m := range members {
		cpu := procCPU(pids[m]) - cpu0[m]
		b.ReportMetric(100*cpu.Seconds()/el.Seconds(), fmt.Sprintf("cpu%%-node%d", i))
		b.ReportMetric(float64(procRSS(pids[m]))/(1<<20), fmt.Sprintf("rss-MiB-node%d", i))
	}
}

// beatInstances reads ferry_registry_instances{kind="beat"} from a
// member's /metrics (-1 when unreadable).
func beatInstances(addr string) int {
	code, body, err := httpDo("GET", "http://"+addr+"/metrics")
	if err != nil || code != 200 {
		return -1
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, `ferry_registry_instances{kind="beat"}`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return int(v)
		}
	}
	return -1
}

// procCPU is a process's user+system CPU time (/proc/PID/stat, clock
// ticks of 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procRSS is a process's resident set in bytes (VmRSS).
func procRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
