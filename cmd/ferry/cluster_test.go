package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/registry-server/distro"
	"github.com/ferrysync/ferry/registry-server/membership"
)

// clusterPorts picks n main ports whose derived ports are all free.
func clusterPorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := membership.FreePorts("127.0.0.1", n, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

func httpDo(method, rawURL string) (int, string, error) {
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		return 0, "", err
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// healthyHosts is what a consumer sees: the healthy instances of svc on
// the member at addr ("ip:port" each).
func healthyHosts(addr, svc string) ([]string, error) {
	code, body, err := httpDo("GET", "http://"+addr+"/nacos/v1/ns/instance/list?"+url.Values{"serviceName": {svc}, "healthyOnly": {"true"}}.Encode())
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("list on %s: %d %s", addr, code, body)
	}
	var si struct {
		Hosts []struct {
			IP   string `json:"ip"`
			Port int    `json:"port"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(body), &si); err != nil {
		return nil, err
	}
	var out []string
	for _, h := range si.Hosts {
		out = append(out, net.JoinHostPort(h.IP, strconv.Itoa(h.Port)))
	}
	return out, nil
}

// raftLeader reads the Raft leader's member address from a member's
// /nacos/v1/core/cluster/self.
func raftLeader(addr string) string {
	code, body, err := httpDo("GET", "http://"+addr+"/nacos/v1/core/cluster/self")
	if err != nil || code != 200 {
		return ""
	}
	var res struct {
		Data struct {
			ExtendInfo struct {
				RaftMetaData struct {
					MetaDataMap map[string]struct {
						LeaderMember string `json:"leaderMember"`
					} `json:"metaDataMap"`
				} `json:"raftMetaData"`
			} `json:"extendInfo"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(body), &res) != nil {
		return ""
	}
	return res.Data.ExtendInfo.RaftMetaData.MetaDataMap["ferry_registry"].LeaderMember
}

// TestRegistryClusterLeaderKill9: three `ferry registry` processes with
// the same -members list form one Raft group; every member, followers
// included, becomes ready; a persistent instance registered on a follower
// (forwarded to the leader) is served by every member; after kill -9 of
// the leader, a consumer sampling every survivor every 100 ms (healthy
// instances only) never misses it, and a new persistent registration on a
// survivor succeeds (the caller never sees "not leader").
func TestRegistryClusterLeaderKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three registry processes")
	}
	ports := clusterPorts(t, 3)
	var members, addrs []string
	for _, p := range ports {
		members = append(members, "127.0.0.1:"+strconv.Itoa(p))
	}
	addrs = members
	// The providers: real listening ports, so the leader's TCP probe keeps
	// the persistent instances healthy.
	var provs []string
	for i := 0; i < 2; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		provs = append(provs, l.Addr().String())
	}
	procs := map[string]interface{ Signal(os.Signal) error }{}
	for i, p := range ports {
		dir := filepath.Join(t.TempDir(), "data")
		cmd := startFerry(t, fmt.Sprintf("registry-%d", i), "registry", "-port", strconv.Itoa(p), "-data", dir,
			"-members", strings.Join(members, ","), "-advertise", members[i])
		procs[members[i]] = cmd.Process
	}
	poll.Every(t, 60*time.Second, httpPoll, "every member ready (followers too)", func() bool {
		for _, a := range addrs {
			if code, _, err := httpDo("GET", "http://"+a+"/nacos/ready"); err != nil || code != 200 {
				return false
			}
		}
		return true
	})
	var leader string
	poll.Every(t, 30*time.Second, httpPoll, "every member agrees on the leader", func() bool {
		leader = raftLeader(addrs[0])
		for _, a := range addrs[1:] {
			if raftLeader(a) != leader {
				return false
			}
		}
		return leader != ""
	})
	var follower string
	var survivors []string
	for _, a := range addrs {
		if a != leader {
			survivors = append(survivors, a)
			follower = a
		}
	}
	register := func(on, prov string) {
		t.Helper()
		ip, port, _ := net.SplitHostPort(prov)
		q := url.Values{"serviceName": {"orders"}, "ip": {ip}, "port": {port}, "ephemeral": {"false"}}
		code, body, err := httpDo("POST", "http://"+on+"/nacos/v1/ns/instance?"+q.Encode())
		if err != nil || code != 200 || body != "ok" {
			t.Fatalf("register %s on %s: %d %q %v", prov, on, code, body, err)
		}
	}
	register(follower, provs[0])
	poll.Every(t, 30*time.Second, httpPoll, "the instance on every member", func() bool {
		for _, a := range addrs {
			if h, err := healthyHosts(a, "orders"); err != nil || len(h) != 1 || h[0] != provs[0] {
				return false
			}
		}
		return true
	})

	if err := procs[leader].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// Sample every survivor every 100 ms until a new leader is elected and
	// a while after: the instance must be in every sample.
	var newLeader string
	samples := 0
	for time.Since(killed) < 30*time.Second {
		for _, a := range survivors {
			h, err := healthyHosts(a, "orders")
			if err != nil || len(h) < 1 || h[0] != provs[0] {
				t.Fatalf("%v after kill -9 of the leader, %s served %v (%v)", time.Since(killed), a, h, err)
			}
			samples++
		}
		if newLeader == "" {
			if l := raftLeader(survivors[0]); l != "" && l != leader && raftLeader(survivors[1]) == l {
				newLeader = l
				t.Logf("new leader %s after %v", newLeader, time.Since(killed))
			}
		} else if time.Since(killed) > 5*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond) // the consumer's sampling period
	}
	if newLeader == "" {
		t.Fatal("no new leader within 30 s")
	}
	t.Logf("%d samples, none missing the instance", samples)
	// Writes go on through any survivor.
	for _, a := range survivors {
		if a != newLeader {
			register(a, provs[1])
		}
	}
	poll.Every(t, 30*time.Second, httpPoll, "the second instance on every survivor", func() bool {
		for _, a := range survivors {
			if h, err := healthyHosts(a, "orders"); err != nil || len(h) != 2 {
				return false
			}
		}
		return true
	})
	// Graceful stop of the new leader: the last member keeps serving.
	if err := procs[newLeader].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, a := range survivors {
		if a != newLeader {
			if h, err := healthyHosts(a, "orders"); err != nil || len(h) != 2 {
				t.Fatalf("after SIGTERM of the leader, %s served %v (%v)", a, h, err)
			}
		}
	}
}

// TestRegistryMemberFlags: -members, -members-file (cluster.conf) and
// -advertise map onto the config; the bad inputs are refused naming what
// is wrong.
func TestRegistryMemberFlags(t *testing.T) {
	env := &cmdEnv{stdout: io.Discard, stderr: io.Discard, logger: nil}
	cfg, err := registryConfig([]string{"-port", "8848", "-members", "10.0.0.1:8848,10.0.0.2:8848,10.0.0.3:8848", "-advertise", "10.0.0.1:8848"}, env)
	if err != nil || !cfg.Clustered() || cfg.Self() != "10.0.0.1:8848" || len(cfg.Members) != 3 {
		t.Fatalf("%v %+v", err, cfg.Members)
	}
	conf := filepath.Join(t.TempDir(), "cluster.conf")
	if err := os.WriteFile(conf, []byte("# members\n127.0.0.1:8848\n127.0.0.1:8858 # b\n127.0.0.1:8868\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = registryConfig([]string{"-port", "8858", "-members-file", conf}, env)
	if err != nil || cfg.Self() != "127.0.0.1:8858" || len(cfg.Members) != 3 {
		t.Fatalf("cluster.conf: %v %+v", err, cfg.Members)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-port", "8848", "-members", "10.0.0.2:8848,10.0.0.3:8848", "-advertise", "10.0.0.1:8848"}, "does not contain this node 10.0.0.1:8848"},
		{[]string{"-port", "8848", "-members", "127.0.0.1:8848,127.0.0.1:8848"}, "listed twice"},
		{[]string{"-port", "8848", "-members", "127.0.0.1:8848,127.0.0.1:8849"}, "SDK gRPC port 9849 clashes"},
		{[]string{"-port", "8848", "-members", "127.0.0.1:8848", "-advertise", "127.0.0.1:8849"}, "its port must be this node's Port 8848"},
		{[]string{"-port", "8848", "-grpc-port", "9000", "-members", "127.0.0.1:8848"}, "SDK gRPC port is Port+1000"},
		{[]string{"-port", "8848", "-members", "127.0.0.1:8848", "-members-file", conf}, "exclusive"},
	} {
		if _, err := registryConfig(tc.args, env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// startCluster starts n `ferry registry` members on loopback and waits
// until every one is ready.
func startCluster(t *testing.T, n int) (members []string, procs map[string]*os.Process) {
	t.Helper()
	ports := clusterPorts(t, n)
	for _, p := range ports {
		members = append(members, "127.0.0.1:"+strconv.Itoa(p))
	}
	procs = map[string]*os.Process{}
	for i, p := range ports {
		cmd := startFerry(t, fmt.Sprintf("registry-%d", i), "registry", "-port", strconv.Itoa(p), "-data", filepath.Join(t.TempDir(), "data"),
			"-members", strings.Join(members, ","), "-advertise", members[i])
		procs[members[i]] = cmd.Process
	}
	poll.Every(t, 60*time.Second, httpPoll, "every member ready", func() bool {
		for _, a := range members {
			if code, _, err := httpDo("GET", "http://"+a+"/nacos/ready"); err != nil || code != 200 {
				return false
			}
		}
		return true
	})
	return members, procs
}

// TestRegistryClusterDistroKill9: beat-kept (1.x HTTP) instances
// registered through one member are replicated to every member by
// Distro; a client keeps beating through any live member (forwarded to the
// responsible one); after kill -9 of a member responsible for some of them,
// every survivor, sampled every 100 ms for healthy instances, serves every
// instance in every sample, past the 15 s beat timeout (the new responsible
// members adopted them).
func TestRegistryClusterDistroKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three registry processes")
	}
	members, procs := startCluster(t, 3)
	var insts []string
	for i := 1; i <= 6; i++ {
		insts = append(insts, fmt.Sprintf("10.7.0.%d:20880", i))
	}
	for _, in := range insts {
		ip, port, _ := net.SplitHostPort(in)
		q := url.Values{"serviceName": {"carts"}, "ip": {ip}, "port": {port}}
		if code, body, err := httpDo("POST", "http://"+members[0]+"/nacos/v1/ns/instance?"+q.Encode()); err != nil || code != 200 {
			t.Fatalf("register %s: %d %s %v", in, code, body, err)
		}
	}
	var mu sync.Mutex
	dead := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the client: beats every second through a live member
		defer wg.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			mu.Lock()
			var live []string
			for _, m := range members {
				if !dead[m] {
					live = append(live, m)
				}
			}
			mu.Unlock()
			for i, in := range insts {
				ip, port, _ := net.SplitHostPort(in)
				q := url.Values{"serviceName": {"carts"}, "ip": {ip}, "port": {port}}
				_, _, _ = httpDo("PUT", "http://"+live[(n+i)%len(live)]+"/nacos/v1/ns/instance/beat?"+q.Encode())
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	all := func(on string) bool {
		h, err := healthyHosts(on, "carts")
		return err == nil && len(h) == len(insts)
	}
	poll.Every(t, 15*time.Second, httpPoll, "every instance on every member", func() bool {
		for _, m := range members {
			if !all(m) {
				return false
			}
		}
		return true
	})
	// Kill the member responsible for the first instance.
	victim := distro.Responsible(insts[0], members)
	mu.Lock()
	dead[victim] = true
	mu.Unlock()
	if err := procs[victim].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	samples := 0
	for time.Since(killed) < 22*time.Second {
		for _, m := range members {
			if m == victim {
				continue
			}
			if h, err := healthyHosts(m, "carts"); err != nil || len(h) != len(insts) {
				t.Fatalf("%v after kill -9 of %s, %s served %v (%v)", time.Since(killed), victim, m, h, err)
			}
			samples++
		}
		time.Sleep(100 * time.Millisecond) // the consumer's sampling period
	}
	t.Logf("%d samples over %v, none missing an instance", samples, time.Since(killed).Round(time.Second))
}
