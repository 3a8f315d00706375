package zkwatch

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// Real provider URLs (decoded node names) from each Dubbo variant; see
// /work/shared/reference/dubbo.md for where each comes from.
const (
	urlDubbo260 = "dubbo://172.20.25.108:29012/org.demo.api.chapter_07_failfast.UserFacade?anyhost=true&application=dubbo-demo-provider&dubbo=2.6.0&generic=false&group=dubbo-demo-group&interface=org.demo.api.chapter_07_failfast.UserFacade&methods=get,insert&owner=zhangxue&pid=13156&revision=1.0.0&side=provider&timeout=5000&timestamp=1578295038734&version=1.0.0"
	urlDubbo27  = "dubbo://172.20.3.201:20880/org.apache.dubbo.demo.DemoService?anyhost=true&application=dubbo-demo-api-provider&default=true&deprecated=false&dubbo=2.0.2&dynamic=true&generic=false&interface=org.apache.dubbo.demo.DemoService&methods=sayHello,sayHelloAsync&pid=25404&release=&side=provider&timestamp=1608630211892"
	urlDubbo314 = "dubbo://30.221.146.35:20880/org.apache.dubbo.samples.api.GreetingsService?anyhost=true&application=first-dubbo-provider&background=false&deprecated=false&dubbo=2.0.2&dynamic=true&environment=product&generic=false&interface=org.apache.dubbo.samples.api.GreetingsService&ipv6=fd00:1:5:5200:3218:774a:4f67:2341&methods=sayHi&pid=85639&release=3.1.4&service-name-mapping=true&side=provider&timestamp=1674960780647"
	urlDubbo320 = "dubbo://192.168.1.5:20882/org.hzz.GreetingService?anyhost=true&application=first-dubbo-provider&background=false&deprecated=false&dubbo=2.0.2&dynamic=true&environment=product&executor-management-mode=isolation&file-cache=true&generic=false&interface=org.hzz.GreetingService&methods=sayHi&pid=21056&prefer.serialization=fastjson2,hessian2&release=3.2.0&service-name-mapping=true&side=provider&timestamp=1683559572642"
	urlDubbo33  = "dubbo://192.168.1.5:20882/org.hzz.GreetingService?application=first-dubbo-provider&deprecated=false&dubbo=2.0.2&dynamic=true&environment=product&generic=false&interface=org.hzz.GreetingService&methods=sayHi&prefer.serialization=fastjson2,hessian2&release=3.3.1&service-name-mapping=true&side=provider&timestamp=1729750000123"
	urlDubboGo  = "dubbo://192.0.2.2:20000/org.example.DemoService?IDL-mode=IDL&anyhost=true&application=demo-provider&bean.name=DemoService&cluster=failover&export=true&group=g1&interface=org.example.DemoService&loadbalance=random&max-server-recv-msg-size=4mib&methods=SayHello,sayHello&module=sample&name=demo-provider&organization=dubbo-go&owner=dubbo-go&pid=19499&registry=zookeeper&registry.role=3&registry.type=interface&release=dubbo-golang-3.3.2&service.filter=echo,token,accesslog,tps,generic_service,execute,pshutdown&side=provider&timestamp=1795353227&version=1.0.0&weight=0"
	// simplified=true on the registry: no interface, pid, anyhost or timestamp.
	urlSimplified = "tri://10.0.0.7:50051/com.example.Simple?application=simple-app&dubbo=2.0.2&methods=a,b&release=3.2.10&side=provider&version=2.0.0"
	urlIPv6       = "dubbo://[fd00:1::5]:20880/com.example.V6?application=v6&interface=com.example.V6&side=provider&timestamp=1700000000000&weight=50"
	urlPersistent = "dubbo://10.1.1.1:20880/com.example.P?application=p&dynamic=false&interface=com.example.P&side=provider&timestamp=1700000000001"
	urlHostname   = "rest://provider-3.svc.local:8080/com.example.Rest?application=rest&interface=com.example.Rest&side=provider&timestamp=1700000000002&tag="
)

func TestParseURLTable(t *testing.T) {
	tests := []struct {
		name                          string
		in                            string
		proto, host, addr, iface, ver string
		group, app                    string
		port, weight                  int
		ts                            int64
		dynamic                       bool
		extra                         map[string]string
	}{
		{"dubbo-2.6.0", urlDubbo260, "dubbo", "172.20.25.108", "172.20.25.108:29012", "org.demo.api.chapter_07_failfast.UserFacade", "1.0.0", "dubbo-demo-group", "dubbo-demo-provider", 29012, 100, 1578295038734, true, map[string]string{"methods": "get,insert"}},
		{"dubbo-2.7", urlDubbo27, "dubbo", "172.20.3.201", "172.20.3.201:20880", "org.apache.dubbo.demo.DemoService", "", "", "dubbo-demo-api-provider", 20880, 100, 1608630211892, true, map[string]string{"release": ""}},
		{"dubbo-3.1.4", urlDubbo314, "dubbo", "30.221.146.35", "30.221.146.35:20880", "org.apache.dubbo.samples.api.GreetingsService", "", "", "first-dubbo-provider", 20880, 100, 1674960780647, true, map[string]string{"ipv6": "fd00:1:5:5200:3218:774a:4f67:2341"}},
		{"dubbo-3.2.0", urlDubbo320, "dubbo", "192.168.1.5", "192.168.1.5:20882", "org.hzz.GreetingService", "", "", "first-dubbo-provider", 20882, 100, 1683559572642, true, map[string]string{"prefer.serialization": "fastjson2,hessian2"}},
		{"dubbo-3.3", urlDubbo33, "dubbo", "192.168.1.5", "192.168.1.5:20882", "org.hzz.GreetingService", "", "", "first-dubbo-provider", 20882, 100, 1729750000123, true, nil},
		{"dubbo-go-3.3.2 seconds and weight=0", urlDubboGo, "dubbo", "192.0.2.2", "192.0.2.2:20000", "org.example.DemoService", "1.0.0", "g1", "demo-provider", 20000, 0, 1795353227000, true, map[string]string{"service.filter": "echo,token,accesslog,tps,generic_service,execute,pshutdown"}},
		{"simplified", urlSimplified, "tri", "10.0.0.7", "10.0.0.7:50051", "com.example.Simple", "2.0.0", "", "simple-app", 50051, 100, 0, true, nil},
		{"ipv6", urlIPv6, "dubbo", "fd00:1::5", "[fd00:1::5]:20880", "com.example.V6", "", "", "v6", 20880, 50, 1700000000000, true, nil},
		{"persistent", urlPersistent, "dubbo", "10.1.1.1", "10.1.1.1:20880", "com.example.P", "", "", "p", 20880, 100, 1700000000001, false, nil},
		{"hostname and empty value", urlHostname, "rest", "provider-3.svc.local", "provider-3.svc.local:8080", "com.example.Rest", "", "", "rest", 8080, 100, 1700000000002, true, map[string]string{"tag": ""}},
		{"value with = kept whole", "dubbo://1.2.3.4:1/x?token=a=b==&interface=x", "dubbo", "1.2.3.4", "1.2.3.4:1", "x", "", "", "", 1, 100, 0, true, map[string]string{"token": "a=b=="}},
		{"user info dropped", "dubbo://admin:secret@1.2.3.4:2/x?a=1", "dubbo", "1.2.3.4", "1.2.3.4:2", "x", "", "", "", 2, 100, 0, true, map[string]string{"a": "1"}},
		{"no port, no query", "override://0.0.0.0/com.foo.Bar", "override", "0.0.0.0", "0.0.0.0:0", "com.foo.Bar", "", "", "", 0, 100, 0, true, nil},
		{"percent stays after one decode", "dubbo://1.2.3.4:5/x?expr=a%3Db", "dubbo", "1.2.3.4", "1.2.3.4:5", "x", "", "", "", 5, 100, 0, true, map[string]string{"expr": "a%3Db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseURL(tt.in)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if u.Protocol != tt.proto || u.Host != tt.host || u.Port != tt.port || u.Addr() != tt.addr {
				t.Errorf("got %s %s %d %s, want %s %s %d %s", u.Protocol, u.Host, u.Port, u.Addr(), tt.proto, tt.host, tt.port, tt.addr)
			}
			if u.Interface() != tt.iface || u.Version() != tt.ver || u.Group() != tt.group || u.Application() != tt.app {
				t.Errorf("iface/ver/group/app = %q %q %q %q", u.Interface(), u.Version(), u.Group(), u.Application())
			}
			if u.Weight() != tt.weight {
				t.Errorf("Weight = %d, want %d", u.Weight(), tt.weight)
			}
			if u.Timestamp() != tt.ts {
				t.Errorf("Timestamp = %d, want %d", u.Timestamp(), tt.ts)
			}
			if u.Dynamic() != tt.dynamic {
				t.Errorf("Dynamic = %v", u.Dynamic())
			}
			for k, v := range tt.extra {
				if got, ok := u.Params[k]; !ok || got != v {
					t.Errorf("param %s = %q (%v), want %q", k, got, ok, v)
				}
			}
			// A node name as Java writes it decodes to the same URL.
			back, err := ParseProviderNode(url.QueryEscape(tt.in))
			if err != nil || back.String() != u.String() {
				t.Errorf("node round trip: %v %q vs %q", err, back.String(), u.String())
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, in := range []string{
		"", "no-scheme", "://1.2.3.4:1/x", "dubbo://", "dubbo:///path", "dubbo://1.2.3.4:notaport/x",
		"dubbo://1.2.3.4:99999/x", "dubbo://[::1/x", "dubbo://[zz::1]:1/x", "dubbo://a:b:c/x", "du bbo://1.2.3.4:1/",
		"dubbo://:20880/x",
	} {
		if _, err := ParseURL(in); !errors.Is(err, ErrBadURL) {
			t.Errorf("ParseURL(%q) = %v, want ErrBadURL", in, err)
		}
	}
	if _, err := ParseProviderNode("dubbo%3A%2F%2F1.2.3.4%ZZ"); !errors.Is(err, ErrUndecodable) {
		t.Errorf("undecodable: %v", err)
	}
}

func TestParseURLUnbracketedIPv6(t *testing.T) {
	u, err := ParseURL("dubbo://fd00::7:20880/x?interface=x")
	if err != nil {
		t.Fatal(err)
	}
	// "20880" is not an IPv6 group (5 digits), so it is the port.
	if u.Host != "fd00::7" || u.Port != 20880 {
		t.Fatalf("got %q %d", u.Host, u.Port)
	}
	// Ambiguous by nature: "fd00::7:2088" is itself an address, taken whole.
	u, err = ParseURL("dubbo://fd00::7:2088/x")
	if err != nil || u.Host != "fd00::7:2088" || u.Port != 0 {
		t.Fatalf("got %q %d %v", u.Host, u.Port, err)
	}
	u, err = ParseURL("dubbo://fd00::7%eth0:1/x")
	if err == nil && strings.Contains(u.Host, "/") {
		t.Fatalf("host %q", u.Host)
	}
}

func TestNormalizeTimestamp(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "x": 0, "-5": 0, "1795353227": 1795353227000, "1608630211892": 1608630211892} {
		if got := normalizeTimestamp(in); got != want {
			t.Errorf("normalizeTimestamp(%q) = %d, want %d", in, got, want)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{urlDubbo260, urlDubbo27, urlDubbo314, urlDubbo320, urlDubbo33, urlDubboGo, urlSimplified, urlIPv6, urlPersistent, urlHostname} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("error not ErrBadURL: %v", err)
			}
			return
		}
		if u.Host == "" || u.Port < 0 || u.Port > 65535 || u.Params == nil {
			t.Fatalf("bad result %+v from %q", u, s)
		}
		// The rebuilt URL parses to the same thing.
		again, err := ParseURL(u.String())
		if err != nil {
			t.Fatalf("reparse of %q (from %q): %v", u.String(), s, err)
		}
		if again.Addr() != u.Addr() || again.Protocol != u.Protocol || len(again.Params) != len(u.Params) {
			t.Fatalf("reparse differs: %+v vs %+v", again, u)
		}
		_ = u.Weight()
		_ = u.Timestamp()
		_, _ = ParseProviderNode(s)
	})
}
