package registryserver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/naming"
)

// BenchmarkUDPPush1000 measures change-to-callback latency of UDP pushes
// to 1,000 Nacos 1.x subscribers of one service on a whole node, and the
// registry's CPU per 1,000 pushes:
//
//	go test -run '^$' -bench UDPPush1000 -benchtime 1x ./registry-server/
//
// The subscribers live in a child process (this test binary, re-run as
// TestUDPBenchSubscribers), so that the benchmark process is the registry
// alone and its getrusage is the registry's CPU. Each subscriber is a
// loopback UDP socket that subscribed with a real instance-list poll and
// does what nacos-sdk-go v1.1.4's PushReceiver does on a push: gunzip
// when needed, decode the envelope and the ServiceInfo (its "callback"),
// ack. A change is a beat-kept registration or removal of one of 10
// instances; latency runs from the change to each subscriber's decode and
// includes the 500 ms push delay. CPU is the registry process's during the
// rounds minus the same process idle (1,000 subscribers, no change) for as
// long: the baseline in the same run.
func BenchmarkUDPPush1000(b *testing.B) {
	const subscribers, rounds = 1000, 10
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = b.TempDir()
	s, err := Open(cfg, testlog.New(b, slog.LevelError), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	if err := s.Raft().WaitReady(10 * time.Second); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := s.Naming().RegisterBeatKept(benchKey, benchInstance(i)); err != nil {
			b.Fatal(err)
		}
	}

	child := exec.Command(os.Args[0], "-test.run=^TestUDPBenchSubscribers$")
	child.Env = append(os.Environ(), "FERRY_UDP_BENCH_SUBSCRIBERS="+strconv.Itoa(subscribers), "FERRY_UDP_BENCH_HTTP="+s.HTTPAddr().String())
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); _ = child.Wait() }()
	// seen[i] is the host count of subscriber i's latest push and when it
	// was decoded, as the child reports them ("i hosts unixnano").
	type sighting struct {
		hosts int
		at    time.Time
	}
	var mu sync.Mutex
	seen := make([]sighting, subscribers)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 1 && f[0] == "ready" {
				close(ready)
				continue
			}
			if len(f) != 3 {
				continue
			}
			i, _ := strconv.Atoi(f[0])
			h, _ := strconv.Atoi(f[1])
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			if i >= 0 && i < subscribers {
				mu.Lock()
				seen[i] = sighting{h, time.Unix(0, ns)}
				mu.Unlock()
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		b.Fatal("the subscriber process did not get ready")
	}
	if n := s.UDPPush().Count(); n != subscribers {
		b.Fatalf("%d subscribers", n)
	}

	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	var lat []time.Duration
	cpu0, wall0 := cpu(), time.Now()
	for r := 0; r < rounds; r++ {
		want := 9 // even rounds remove instance 9, odd ones put it back
		t0 := time.Now()
		if r%2 == 0 {
			err = s.Naming().DeregisterBeatKept(benchKey, naming.Addr{IP: benchInstance(9).IP, Port: 20880, Cluster: naming.DefaultCluster})
		} else {
			want = 10
			err = s.Naming().RegisterBeatKept(benchKey, benchInstance(9))
		}
		if err != nil {
			b.Fatal(err)
		}
		poll.Until(b, 10*time.Second, fmt.Sprintf("round %d's push at every subscriber", r), func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, v := range seen {
				if v.hosts != want || !v.at.After(t0) {
					return false
				}
			}
			for _, v := range seen {
				lat = append(lat, v.at.Sub(t0))
			}
			return true
		})
	}
	busy, wall := cpu()-cpu0, time.Since(wall0)
	b.StopTimer()
	idle0 := cpu()
	time.Sleep(wall) // measuring the idle baseline, not synchronising
	idle := cpu() - idle0
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	perK := (busy - idle) / time.Duration(rounds*subscribers/1000)
	b.ReportMetric(float64(p(0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p(0.99).Milliseconds()), "p99-ms")
	b.ReportMetric(perK.Seconds()*1000, "cpu-ms/1000pushes")
	fmt.Printf("UDP push, %d subscribers × %d changes: p50 %v, p99 %v, max %v (incl. the 500 ms push delay); registry CPU %v busy vs %v idle over %v → %v per 1,000 pushes\n",
		subscribers, rounds, p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond),
		busy.Round(time.Millisecond), idle.Round(time.Millisecond), wall.Round(time.Millisecond), perK.Round(100*time.Microsecond))
}

var benchKey = naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "providers:com.example.Bench::"}

func benchInstance(i int) naming.Instance {
	return naming.Instance{IP: "10.0.0." + strconv.Itoa(i+1), Port: 20880, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true,
		Metadata: map[string]string{"application": "bench", "interface": "com.example.Bench", "methods": "a,b,c", "side": "provider"}}
}

// TestUDPBenchSubscribers is BenchmarkUDPPush1000's subscriber process; it
// does nothing unless the benchmark runs it.
func TestUDPBenchSubscribers(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FERRY_UDP_BENCH_SUBSCRIBERS"))
	addr := os.Getenv("FERRY_UDP_BENCH_HTTP")
	if n == 0 || addr == "" {
		return // not a benchmark child: nothing to test
	}
	var outMu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	// Reports carry their own timestamps: they are flushed every 20 ms, so
	// that the registry process reads a few large chunks, not 1,000 lines a
	// round (its CPU is what is measured).
	report := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(out, format, args...)
		outMu.Unlock()
	}
	flushed := make(chan struct{})
	stopFlush := make(chan struct{})
	defer func() { close(stopFlush); <-flushed }()
	go func() {
		defer close(flushed)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopFlush:
				return
			case <-tk.C:
				outMu.Lock()
				out.Flush()
				outMu.Unlock()
			}
		}
	}()
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var conns []*net.UDPConn
	for i := 0; i < n; i++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		go func(i int, c *net.UDPConn) {
			buf := make([]byte, 64<<10)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				data := buf[:n]
				if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
					zr, err := gzip.NewReader(bytes.NewReader(data))
					if err != nil {
						continue
					}
					if data, err = io.ReadAll(zr); err != nil {
						continue
					}
				}
				var env struct {
					Type        string `json:"type"`
					Data        string `json:"data"`
					LastRefTime int64  `json:"lastRefTime"`
				}
				// The fields nacos-sdk-go v1.1.4 decodes into model.Service.
				var si struct {
					Name        string `json:"name"`
					Clusters    string `json:"clusters"`
					CacheMillis uint64 `json:"cacheMillis"`
					LastRefTime uint64 `json:"lastRefTime"`
					Hosts       []struct {
						InstanceID  string            `json:"instanceId"`
						IP          string            `json:"ip"`
						Port        uint64            `json:"port"`
						Weight      float64           `json:"weight"`
						Healthy     bool              `json:"healthy"`
						Enabled     bool              `json:"enabled"`
						Ephemeral   bool              `json:"ephemeral"`
						ClusterName string            `json:"clusterName"`
						ServiceName string            `json:"serviceName"`
						Metadata    map[string]string `json:"metadata"`
					} `json:"hosts"`
				}
				if json.Unmarshal(data, &env) != nil || json.Unmarshal([]byte(env.Data), &si) != nil {
					continue
				}
				report("%d %d %d\n", i, len(si.Hosts), time.Now().UnixNano())
				ack, _ := json.Marshal(map[string]string{"type": "push-ack", "lastRefTime": strconv.FormatInt(env.LastRefTime, 10), "data": ""})
				_, _ = c.WriteToUDPAddrPort(ack, from)
			}
		}(i, c)
		q := url.Values{"serviceName": {benchKey.Name}, "udpPort": {strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)}, "clientIP": {"127.0.0.1"}}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/nacos/v1/ns/instance/list?"+q.Encode(), nil)
		req.Header.Set("User-Agent", "Nacos-Go-Client:v1.1.4")
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	report("ready\n")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes stdin
	for _, c := range conns {
		c.Close()
	}
}
