package registryserver

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/registry-server/naming"
)

// A whole node pushes a change to a Nacos 1.x subscriber over UDP: the
// poll's source address (not its clientIP) and udpPort, the instance-list
// JSON in Nacos' envelope, within the push delay; the subscriber is listed
// and counted.
func TestNodeUDPPush(t *testing.T) {
	s := openNode(t, t.TempDir())
	defer s.Stop()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	port := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)

	pollList := func() string {
		q := url.Values{"serviceName": {"demo"}, "udpPort": {port}, "clientIP": {"192.0.2.77"}, "app": {"legacy"}}
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTPAddr().String()+"/nacos/v1/ns/instance/list?"+q.Encode(), nil)
		req.Header.Set("User-Agent", "Nacos-Java-Client:v1.4.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("list: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	// Bad push endpoints: the poll is answered as usual, nothing subscribes.
	for _, bad := range []string{"0", "-1", "65536", "abc", ""} {
		q := url.Values{"serviceName": {"demo"}, "udpPort": {bad}}
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTPAddr().String()+"/nacos/v1/ns/instance/list?"+q.Encode(), nil)
		req.Header.Set("User-Agent", "Nacos-Java-Client:v1.4.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("udpPort %q: %d", bad, resp.StatusCode)
		}
	}
	if code, _ := call(t, s, http.MethodGet, "/nacos/v1/ns/instance/list", url.Values{"serviceName": {"demo"}, "udpPort": {port}}); code != 200 || s.UDPPush().Count() != 0 {
		t.Fatalf("a poll from Go's default agent: %d, %d subscribers", code, s.UDPPush().Count())
	}
	pollList()
	subs := s.UDPPush().Subscribers(demoKey)
	if len(subs) != 1 || subs[0].Addr.String() != "127.0.0.1:"+port || subs[0].ClientIP != "192.0.2.77" || subs[0].App != "legacy" {
		t.Fatalf("subscribers %+v", subs)
	}
	if got := s.Naming().Subscribers(demoKey); len(got) != 1 || got[0].ClientID != "udp:127.0.0.1:"+port {
		t.Fatalf("naming lists %+v", got)
	}

	start := time.Now()
	if code, body := call(t, s, http.MethodPost, "/nacos/v1/ns/instance", url.Values{"serviceName": {"demo"}, "ip": {"10.0.0.1"}, "port": {"20880"}, "metadata": {"k=v"}}); code != 200 {
		t.Fatalf("register: %d %s", code, body)
	}
	_ = udp.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64<<10)
	n, from, err := udp.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no push within 2 s: %v", err)
	}
	t.Logf("push after %v", time.Since(start))
	b := buf[:n]
	if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(zr)
	}
	if !strings.HasPrefix(string(b), `{"type":"dom","data":"{`) {
		t.Fatalf("envelope %s", b)
	}
	var env struct {
		Data        string `json:"data"`
		LastRefTime int64  `json:"lastRefTime"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	// The data is what the poll answers now, but for lastRefTime.
	var pushed, polled map[string]any
	_ = json.Unmarshal([]byte(env.Data), &pushed)
	_ = json.Unmarshal([]byte(pollList()), &polled)
	delete(pushed, "lastRefTime")
	delete(polled, "lastRefTime")
	if !reflect.DeepEqual(pushed, polled) || len(pushed["hosts"].([]any)) != 1 {
		t.Fatalf("pushed %v\npolled %v", pushed, polled)
	}
	ack, _ := json.Marshal(map[string]string{"type": "push-ack", "lastRefTime": strconv.FormatInt(env.LastRefTime, 10), "data": ""})
	if _, err := udp.WriteToUDPAddrPort(ack, from); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the acked push in /metrics", func() bool {
		_, m := call(t, s, http.MethodGet, "/metrics", nil)
		return strings.Contains(m, `ferry_registry_udp_pushes_total{result="ok"} 1`) &&
			strings.Contains(m, "ferry_registry_udp_subscribers 1") &&
			strings.Contains(m, "ferry_registry_udp_client_ip_ignored_total 2") &&
			strings.Contains(m, "ferry_registry_subscriptions 1") &&
			strings.Contains(m, `ferry_registry_udp_subscriptions_refused_total{reason="port"} 5`) &&
			strings.Contains(m, `ferry_registry_udp_subscriptions_refused_total{reason="agent"} 1`)
	})
}

var demoKey = naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"}

func TestUDPPushConfigKeys(t *testing.T) {
	c := DefaultConfig()
	if err := c.LoadJSON([]byte(`{"udpPush":false,"udpPushPort":9000,"udpAckTimeout":"250ms","udpPushRetries":4,
		"udpSubscriberTTL":"1m","udpMaxSubscribersPerIP":10,"udpMaxSubscribers":99}`)); err != nil {
		t.Fatal(err)
	}
	u := c.UDPPush
	if u.Enabled || u.Port != 9000 || u.AckTimeout != 250*time.Millisecond || u.Retries != 4 ||
		u.SubscriberTTL != time.Minute || u.MaxPerIP != 10 || u.MaxSubscribers != 99 {
		t.Fatalf("loaded %+v", u)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.UDPPush.Port = 70000
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "UDPPush") {
		t.Fatalf("port 70000: %v", err)
	}
}
