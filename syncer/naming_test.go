package syncer

import (
	"maps"
	"testing"
)

func TestServiceName(t *testing.T) {
	cases := []struct {
		name string
		u    URL
		want string
	}{
		{"interface only", URL{Path: "org.Foo", Params: map[string]string{"interface": "org.Foo"}}, "providers:org.Foo::"},
		{"version only", URL{Path: "org.Foo", Params: map[string]string{"interface": "org.Foo", "version": "1.0.0"}}, "providers:org.Foo:1.0.0:"},
		{"group only", URL{Path: "org.Foo", Params: map[string]string{"interface": "org.Foo", "group": "g1"}}, "providers:org.Foo::g1"},
		{"version and group", URL{Path: "org.Foo", Params: map[string]string{"interface": "org.Foo", "version": "1.0.0", "group": "g1"}}, "providers:org.Foo:1.0.0:g1"},
		{"blank version kept empty", URL{Path: "org.Foo", Params: map[string]string{"interface": "org.Foo", "version": " "}}, "providers:org.Foo::"},
		{"no interface param: path", URL{Path: "org.Foo", Params: map[string]string{"version": "2"}}, "providers:org.Foo:2:"},
		{"path with leading slash", URL{Path: "/org.Foo"}, "providers:org.Foo::"},
		{"interface differs from path", URL{Path: "foo-path", Params: map[string]string{"interface": "org.Foo"}}, "providers:org.Foo::"},
		{"inner class $", URL{Path: "org.Outer$Inner", Params: map[string]string{"interface": "org.Outer$Inner", "version": "1"}}, "providers:org.Outer___Inner:1:"},
		{"$ in group too (whole name)", URL{Path: "org.A$B", Params: map[string]string{"group": "g$1"}}, "providers:org.A___B::g___1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ServiceName(c.u); got != c.want {
				t.Fatalf("ServiceName = %q, want %q", got, c.want)
			}
		})
	}
}

func TestBuildInstance(t *testing.T) {
	m := Marker{Cluster: "zk1", Worker: "w1"}
	cases := []struct {
		name        string
		p           Provider
		wantMeta    map[string]string
		wantEnabled bool
	}{
		{
			name: "java 2.7 url",
			p: Provider{Node: "/dubbo/org.Foo/providers/x", Timestamp: 1608630211892, URL: URL{Protocol: "dubbo", Host: "10.0.0.1", Port: 20880, Path: "org.Foo",
				Params: map[string]string{"interface": "org.Foo", "application": "app", "timestamp": "1608630211892", "weight": "200", "release": "", "side": "provider"}}},
			wantMeta: map[string]string{"interface": "org.Foo", "application": "app", "timestamp": "1608630211892", "weight": "200", "side": "provider",
				"category": "providers", "protocol": "dubbo", "path": "org.Foo", MetaSource: "zk:zk1", MetaWorker: "w1"},
			wantEnabled: true,
		},
		{
			name: "simplified url without interface",
			p:    Provider{URL: URL{Protocol: "tri", Host: "10.0.0.2", Port: 50051, Path: "/org.Bar", Params: map[string]string{"version": "1.0"}}},
			wantMeta: map[string]string{"version": "1.0", "interface": "org.Bar", "category": "providers", "protocol": "tri", "path": "org.Bar",
				MetaSource: "zk:zk1", MetaWorker: "w1"},
			wantEnabled: true,
		},
		{
			name: "url category and protocol overwritten",
			p: Provider{URL: URL{Protocol: "dubbo", Host: "h", Port: 1, Path: "org.Baz",
				Params: map[string]string{"interface": "org.Baz", "category": "", "protocol": "x", "path": "y"}}},
			wantMeta: map[string]string{"interface": "org.Baz", "category": "providers", "protocol": "dubbo", "path": "org.Baz",
				MetaSource: "zk:zk1", MetaWorker: "w1"},
			wantEnabled: true,
		},
		{
			name: "disabled by configurator",
			p:    Provider{Disabled: true, URL: URL{Protocol: "dubbo", Host: "h", Port: 1, Path: "org.Baz"}},
			wantMeta: map[string]string{"interface": "org.Baz", "category": "providers", "protocol": "dubbo", "path": "org.Baz", "enabled": "false",
				MetaSource: "zk:zk1", MetaWorker: "w1"},
		},
		{
			name: "enabled=false param",
			p:    Provider{URL: URL{Protocol: "dubbo", Host: "h", Port: 1, Path: "org.Baz", Params: map[string]string{"enabled": "FALSE"}}},
			wantMeta: map[string]string{"interface": "org.Baz", "category": "providers", "protocol": "dubbo", "path": "org.Baz", "enabled": "false",
				MetaSource: "zk:zk1", MetaWorker: "w1"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inst := BuildInstance(c.p, m)
			if inst.IP != c.p.URL.Host || inst.Port != c.p.URL.Port {
				t.Fatalf("addr = %s:%d", inst.IP, inst.Port)
			}
			if inst.Weight != 1.0 || !inst.Healthy || !inst.Ephemeral || inst.Enabled != c.wantEnabled {
				t.Fatalf("flags: weight=%v healthy=%v ephemeral=%v enabled=%v", inst.Weight, inst.Healthy, inst.Ephemeral, inst.Enabled)
			}
			if !maps.Equal(inst.Metadata, c.wantMeta) {
				t.Fatalf("metadata\n got %v\nwant %v", inst.Metadata, c.wantMeta)
			}
			if !m.Ours(inst) || (Marker{Cluster: "zk2"}).Ours(inst) {
				t.Fatal("marker not recognised")
			}
		})
	}
}

func TestFilterSkip(t *testing.T) {
	prov := func(iface string, params map[string]string) Provider {
		p := map[string]string{"interface": iface}
		maps.Copy(p, params)
		return Provider{URL: URL{Protocol: "dubbo", Host: "10.0.0.1", Port: 20880, Path: iface, Params: p}}
	}
	f := Filter{Include: []string{"org.*", "com.a.*"}, Exclude: []string{"org.internal.*"}}
	cases := []struct {
		name string
		f    Filter
		p    Provider
		mode AppMode
		want SkipReason
	}{
		{"synced", f, prov("org.Foo", nil), "", SkipNone},
		{"sync mode", f, prov("org.Foo", nil), ModeSync, SkipNone},
		{"not included", f, prov("net.Foo", nil), "", SkipNotIncluded},
		{"excluded", f, prov("org.internal.X", nil), "", SkipExcludedPattern},
		{"no include means all", Filter{}, prov("net.Foo", nil), "", SkipNone},
		{"withNacos", f, prov("org.Foo", map[string]string{"withNacos": "true"}), "", SkipWithNacos},
		{"withNacos false", f, prov("org.Foo", map[string]string{"withNacos": "false"}), "", SkipNone},
		{"native app", f, prov("org.Foo", map[string]string{"application": "a"}), ModeNative, SkipAppNative},
		{"excluded app", f, prov("org.Foo", nil), ModeExcluded, SkipAppExcluded},
		{"no host", f, Provider{URL: URL{Protocol: "dubbo", Port: 1, Path: "org.Foo"}}, "", SkipBadAddress},
		{"bad port", f, Provider{URL: URL{Protocol: "dubbo", Host: "h", Port: 0, Path: "org.Foo"}}, "", SkipBadAddress},
		{"no interface", f, Provider{URL: URL{Protocol: "dubbo", Host: "h", Port: 1}}, "", SkipBadAddress},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.f.Skip(c.p, c.mode); got != c.want {
				t.Fatalf("Skip = %q, want %q", got, c.want)
			}
		})
	}
	if err := validatePatterns([]string{"org.[a"}); err == nil {
		t.Fatal("bad pattern accepted")
	}
}

func TestAddrIPv6(t *testing.T) {
	if got := Addr("fd00::1", 20880); got != "[fd00::1]:20880" {
		t.Fatal(got)
	}
}
