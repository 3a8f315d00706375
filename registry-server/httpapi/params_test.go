package httpapi

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		bad  bool
	}{
		{"", nil, false},
		{"   ", nil, false},
		{"null", nil, false}, // nacos-sdk-go's encoding of nil metadata
		{`{"a":"1","b":2,"c":true,"d":null}`, map[string]string{"a": "1", "b": "2", "c": "true", "d": ""}, false},
		{`{}`, map[string]string{}, false},
		{"a=1,b=2", map[string]string{"a": "1", "b": "2"}, false},
		{"a=1,b=2,", map[string]string{"a": "1", "b": "2"}, false}, // Java split drops trailing empties
		{",", map[string]string{}, false},
		{"=v", map[string]string{"": "v"}, false},
		{"a=", nil, true},
		{"a", nil, true},
		{"a=b=c", nil, true},
		{"a=1,,b=2", nil, true},
		{`{"a":[1]}`, nil, true},
		{`{"a":`, nil, true},
		{`[1,2]`, nil, true},
		{`{"a":"1"} trailing`, nil, true},
	}
	for _, tt := range tests {
		got, err := parseMetadata(tt.in)
		if (err != nil) != tt.bad || (!tt.bad && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("parseMetadata(%q) = %v, %v; want %v bad=%t", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestSplitServiceName(t *testing.T) {
	cfg := DefaultConfig()
	p := params{v: url.Values{}, cfg: &cfg}
	for _, tt := range []struct {
		raw, group, name string
		bad              bool
	}{
		{"svc", "DEFAULT_GROUP", "svc", false},
		{"g@@svc", "g", "svc", false},
		{"providers:com.foo.Bar:1.0.0:", "DEFAULT_GROUP", "providers:com.foo.Bar:1.0.0:", false},
		{"g@@a@@b", "", "", true},
		{"@@svc", "", "", true},
		{"g@@", "", "", true},
		{"@svc", "", "", true},
		{"s vc", "", "", true},
		{"服务", "", "", true},
	} {
		k, err := p.splitServiceName("public", "DEFAULT_GROUP", tt.raw)
		if (err != nil) != tt.bad || (!tt.bad && (k.Group != tt.group || k.Name != tt.name)) {
			t.Errorf("%q: %+v %v", tt.raw, k, err)
		}
	}
}

// FuzzParseMetadata: never panics; an accepted input gives valid UTF-8 keys
// and values only when the input was, and the size check is consistent.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{"", "a=1,b=2", `{"a":"1"}`, `{"a":{"b":1}}`, ",,,", "=", "a=b=c", `{"a":1e400}`, "\xff=\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMetadata(s)
		if err != nil {
			if err.status != 400 {
				t.Fatalf("status %d", err.status)
			}
			return
		}
		n := 0
		for k, v := range m {
			n += utf8.RuneCountInString(k) + utf8.RuneCountInString(v)
		}
		if (checkMetadataSize(m, 1024) != nil) != (n > 1024) {
			t.Fatalf("size check inconsistent for %d", n)
		}
	})
}

// FuzzInstanceParams: any query string parses without panic; an accepted
// instance satisfies every rule the store and the naming core rely on.
func FuzzInstanceParams(f *testing.F) {
	for _, s := range []string{
		"serviceName=s&ip=1.1.1.1&port=1",
		"serviceName=g%40%40s&ip=1.1.1.1&port=65535&weight=10000&metadata=a%3D1&clusterName=c-1",
		"serviceName=s&ip=1.1.1.1&port=0",
		"serviceName=%40%40&ip=&port=x&weight=NaN",
		"serviceName=s&ip=1.1.1.1&port=1&beat=%7B%22ip%22%3A%221.1.1.1%22%2C%22port%22%3A1%7D",
	} {
		f.Add(s)
	}
	cfg := DefaultConfig()
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		p := params{v: v, cfg: &cfg}
		if form, aerr := p.instance(); aerr == nil {
			in := form.inst
			if in.IP == "" || in.Port < 1 || in.Port > 65535 || in.Weight < 0 || in.Weight > 10000 || in.Weight != in.Weight {
				t.Fatalf("accepted bad instance %+v", in)
			}
			if !clusterPattern.MatchString(in.Cluster) || form.key.Name == "" || form.key.Group == "" || form.key.Namespace == "" {
				t.Fatalf("accepted bad key/cluster %+v %+v", form.key, in)
			}
			if strings.Contains(form.key.Name, "@@") || checkMetadataSize(in.Metadata, cfg.MaxMetadataLength) != nil {
				t.Fatalf("accepted bad name/metadata %+v", form.key)
			}
		} else if aerr.status != 400 {
			t.Fatalf("status %d", aerr.status)
		}
		if _, in, _, aerr := p.beat(); aerr == nil && (in.IP == "" || in.Port < 1 || in.Port > 65535) {
			t.Fatalf("beat accepted %+v", in)
		}
	})
}
