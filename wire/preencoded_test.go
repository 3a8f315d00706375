package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// encodeBoth encodes a QueryServiceResponse through json.Marshal and
// through its pre-encoded ServiceInfo; they must be byte-identical.
func encodeBoth(t *testing.T, h ResponseHeader, si ServiceInfo) (slow, fast []byte) {
	t.Helper()
	c := NewCodec(0)
	p, err := c.Encode(&QueryServiceResponse{ResponseHeader: h, ServiceInfo: si})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncodeServiceInfo(&si)
	if err != nil {
		t.Fatal(err)
	}
	// Only LastRefTime is read from ServiceInfo when Encoded is set.
	q, err := c.Encode(&QueryServiceResponse{ResponseHeader: h, ServiceInfo: ServiceInfo{LastRefTime: si.LastRefTime}, Encoded: enc})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetMetadata().GetType() != q.GetMetadata().GetType() {
		t.Fatalf("types %s / %s", p.GetMetadata().GetType(), q.GetMetadata().GetType())
	}
	// The EncodedReply that ServerCodec writes is the proto of that payload.
	reply, err := c.EncodeReply(&QueryServiceResponse{ResponseHeader: h, ServiceInfo: ServiceInfo{LastRefTime: si.LastRefTime}, Encoded: enc})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reply.(*EncodedReply); !ok {
		t.Fatalf("EncodeReply gave %T", reply)
	}
	got, err := ServerCodec().Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	want, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if b := got.Materialize(); !bytes.Equal(b, want) {
		t.Fatalf("EncodedReply proto differs\n got: %q\nwant: %q", b, want)
	}
	got.Free()
	return p.GetBody().GetValue(), q.GetBody().GetValue()
}

// TestServerCodec: other messages go through gRPC's proto codec both ways,
// and EncodeReply falls back to a Payload.
func TestServerCodec(t *testing.T) {
	c := NewCodec(0)
	m, err := c.EncodeReply(&HealthCheckResponse{ResponseHeader: Okay()})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := m.(*Payload)
	if !ok {
		t.Fatalf("EncodeReply gave %T", m)
	}
	sc := ServerCodec()
	if sc.Name() != "proto" {
		t.Fatalf("name %q", sc.Name())
	}
	data, err := sc.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Payload
	if err := sc.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&back, p) {
		t.Fatalf("round trip %v / %v", &back, p)
	}
	// Too large for the codec's limit.
	small := NewCodec(4096)
	enc, err := EncodeServiceInfo(&ServiceInfo{Name: strings.Repeat("x", 5000)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.EncodeReply(&QueryServiceResponse{ResponseHeader: Okay(), Encoded: enc}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized reply: %v", err)
	}
}

func TestPreEncodedQueryResponse(t *testing.T) {
	inst := Instance{InstanceID: "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@demo", IP: "10.0.0.1", Port: 8080, Weight: 1.5,
		Healthy: true, Enabled: true, Ephemeral: true, ClusterName: "DEFAULT", ServiceName: "DEFAULT_GROUP@@demo",
		Metadata: map[string]string{"z": "1", "a": "<b>&\"é\u2028", "m": ""}, InstanceHeartBeatInterval: 5000, InstanceHeartBeatTimeOut: 15000, IPDeleteTimeout: 30000}
	failed := ResponseHeader{}
	failed.SetError(CodeInvalidParam, "bad \"name\" <x>")
	tests := []struct {
		name string
		h    ResponseHeader
		si   ServiceInfo
	}{
		{"ok", ResponseHeader{ResultCode: 200, RequestID: "42"}, ServiceInfo{Name: "demo", GroupName: "DEFAULT_GROUP", CacheMillis: 10000, Hosts: []Instance{inst, inst}, LastRefTime: 1700000000000, Valid: true}},
		{"empty hosts", Okay(), ServiceInfo{Name: "x", GroupName: "g", Clusters: "a,b", Hosts: []Instance{}, LastRefTime: 1}},
		{"nil hosts", Okay(), ServiceInfo{Name: "x", GroupName: "g"}},
		{"protection", Okay(), ServiceInfo{Name: "x", GroupName: "g", Hosts: []Instance{inst}, Checksum: "c\x01", AllIPs: true, ReachProtectionThreshold: true, Valid: true}},
		{"many hosts (pooled buffer)", Okay(), ServiceInfo{Name: "big", GroupName: "g", Hosts: []Instance{inst, inst, inst, inst, inst, inst, inst, inst, inst, inst}, LastRefTime: 42, Valid: true}},
		{"failure", failed, ServiceInfo{Name: "ü\xff", GroupName: "g&g", Clusters: "<c>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slow, fast := encodeBoth(t, tt.h, tt.si)
			if !bytes.Equal(slow, fast) {
				t.Fatalf("pre-encoded body differs\nslow: %s\nfast: %s", slow, fast)
			}
			var back QueryServiceResponse
			if err := json.Unmarshal(fast, &back); err != nil {
				t.Fatal(err)
			}
			if back.ServiceInfo.LastRefTime != tt.si.LastRefTime || len(back.ServiceInfo.Hosts) != len(tt.si.Hosts) {
				t.Errorf("decoded %+v", back.ServiceInfo)
			}
		})
	}
}

// TestPreEncodedSharedAcrossTimes: one ServiceInfoJSON serves many answers,
// each with its own lastRefTime and requestId.
func TestPreEncodedSharedAcrossTimes(t *testing.T) {
	si := ServiceInfo{Name: "demo", GroupName: "DEFAULT_GROUP", Hosts: []Instance{{IP: "10.0.0.1", Port: 1}}, Valid: true}
	enc, err := EncodeServiceInfo(&si)
	if err != nil {
		t.Fatal(err)
	}
	for i, ref := range []int64{1, 1700000000000, -5} {
		h := Okay()
		h.RequestID = string(rune('a' + i))
		si.LastRefTime = ref
		p, err := Encode(&QueryServiceResponse{ResponseHeader: h, ServiceInfo: ServiceInfo{LastRefTime: ref}, Encoded: enc})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(&QueryServiceResponse{ResponseHeader: h, ServiceInfo: si})
		if got := p.GetBody().GetValue(); !bytes.Equal(got, want) {
			t.Fatalf("answer %d\n got: %s\nwant: %s", i, got, want)
		}
	}
}

// FuzzPreEncoded: for any strings, the pre-encoded path writes exactly
// what json.Marshal writes.
func FuzzPreEncoded(f *testing.F) {
	f.Add("demo", "DEFAULT_GROUP", "", "10.0.0.1", "k", "v", "", "1", int64(1700000000000), 200, true)
	f.Add("<a>", "g\"", "c,d", "::1", "\u2028", "\xff", "msg & more", "", int64(-1), 500, false)
	f.Fuzz(func(t *testing.T, name, group, clusters, ip, mk, mv, msg, reqID string, ref int64, code int, flag bool) {
		h := ResponseHeader{ResultCode: code, ErrorCode: code / 2, Message: msg, RequestID: reqID}
		si := ServiceInfo{Name: name, GroupName: group, Clusters: clusters, CacheMillis: ref / 3, LastRefTime: ref,
			Hosts:    []Instance{{IP: ip, Port: code, Metadata: map[string]string{mk: mv}, Healthy: flag}},
			Checksum: mv, AllIPs: flag, ReachProtectionThreshold: !flag, Valid: flag}
		slow, fast := encodeBoth(t, h, si)
		if !bytes.Equal(slow, fast) {
			t.Fatalf("pre-encoded body differs\nslow: %q\nfast: %q", slow, fast)
		}
	})
}

// FuzzEncodeInstances: the hosts written without reflection are exactly
// what json.Marshal writes, for any strings, numbers, metadata and nil or
// empty slices and maps (a NaN or infinite weight is refused by both).
func FuzzEncodeInstances(f *testing.F) {
	f.Add("i1", "10.0.0.1", "DEFAULT", "providers:a:1.0.0:", "k", "v", "k2", "", 20880, 1.0, int64(5000), uint8(0))
	f.Add("", "::1", "c<&>", "\u2028\xff", "", "\"", "z", "a", -1, 1e-7, int64(-1), uint8(255))
	f.Add("x", "y", "", "", "a", "b", "a", "c", 0, 1e21, int64(0), uint8(6))
	f.Add("x", "y", "", "", "a", "b", "c", "d", 1, 123456.789e3, int64(1), uint8(1))
	f.Fuzz(func(t *testing.T, id, ip, cluster, svc, k1, v1, k2, v2 string, port int, weight float64, hb int64, shape uint8) {
		in := Instance{InstanceID: id, IP: ip, Port: port, Weight: weight, Healthy: shape&1 != 0, Enabled: shape&2 != 0,
			Ephemeral: shape&4 != 0, ClusterName: cluster, ServiceName: svc,
			InstanceHeartBeatInterval: hb, InstanceHeartBeatTimeOut: hb * 3, IPDeleteTimeout: -hb}
		switch shape >> 3 & 3 {
		case 0:
			in.Metadata = map[string]string{k1: v1, k2: v2}
		case 1:
			in.Metadata = map[string]string{}
		case 2:
			in.Metadata = map[string]string{k1: v1, k2: v2, v1: k1, v2: k2, id: ip, svc: cluster}
		}
		var hosts []Instance
		switch shape >> 5 & 3 {
		case 0:
			hosts = []Instance{in}
		case 1:
			hosts = []Instance{}
		case 2:
			hosts = []Instance{in, in, {IP: ip}}
		}
		want, werr := json.Marshal(hosts)
		got, gerr := appendInstances(nil, hosts)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("json.Marshal error %v, appendInstances error %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("hosts differ\n got: %s\nwant: %s", got, want)
		}
		if werr != nil {
			return
		}
		si := ServiceInfo{Name: svc, GroupName: k1, Clusters: cluster, Hosts: hosts, LastRefTime: hb, Checksum: v1, Valid: true}
		slow, fast := encodeBoth(t, ResponseHeader{ResultCode: 200, RequestID: id}, si)
		if !bytes.Equal(slow, fast) {
			t.Fatalf("pre-encoded body differs\nslow: %q\nfast: %q", slow, fast)
		}
		encodeOthersBoth(t, ResponseHeader{ResultCode: 200, RequestID: id}, NamingHeader{RequestHeader: RequestHeader{RequestID: v2, Module: k2},
			Namespace: k1, ServiceName: svc, GroupName: v1}, si)
	})
}

// encodeOthersBoth: a SubscribeServiceResponse (Payload and EncodedReply)
// and a NotifySubscriberRequest with a pre-encoded ServiceInfo are
// byte-identical to json.Marshal's.
func encodeOthersBoth(t *testing.T, h ResponseHeader, nh NamingHeader, si ServiceInfo) {
	t.Helper()
	c := NewCodec(0)
	enc, err := EncodeServiceInfo(&si)
	if err != nil {
		t.Fatal(err)
	}
	only := ServiceInfo{LastRefTime: si.LastRefTime}
	same := func(what string, slow, fast Message) *Payload {
		t.Helper()
		p, err := c.Encode(slow)
		if err != nil {
			t.Fatal(err)
		}
		q, err := c.Encode(fast)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(p, q) {
			t.Fatalf("%s differs\nslow: %q\nfast: %q", what, p.GetBody().GetValue(), q.GetBody().GetValue())
		}
		return p
	}
	p := same("SubscribeServiceResponse", &SubscribeServiceResponse{ResponseHeader: h, ServiceInfo: si},
		&SubscribeServiceResponse{ResponseHeader: h, ServiceInfo: only, Encoded: enc})
	reply, err := c.EncodeReply(&SubscribeServiceResponse{ResponseHeader: h, ServiceInfo: only, Encoded: enc})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ServerCodec().Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(p)
	if b := got.Materialize(); !bytes.Equal(b, want) {
		t.Fatalf("SubscribeServiceResponse EncodedReply differs\n got: %q\nwant: %q", b, want)
	}
	got.Free()
	same("NotifySubscriberRequest", &NotifySubscriberRequest{NamingHeader: nh, ServiceInfo: si},
		&NotifySubscriberRequest{NamingHeader: nh, ServiceInfo: only, Encoded: enc})
}

// dubboHosts is a ServiceInfo of n Dubbo providers with the metadata a
// Java Dubbo 3 provider registers (about 25 keys).
func dubboHosts(n int) ServiceInfo {
	si := ServiceInfo{Name: "providers:com.example.DemoService:1.0.0:", GroupName: "DEFAULT_GROUP", CacheMillis: 10000, Valid: true}
	for i := range n {
		md := map[string]string{"anyhost": "true", "application": "demo-provider", "release": "3.2.10", "dubbo": "2.0.2",
			"interface": "com.example.DemoService", "version": "1.0.0", "side": "provider", "timestamp": "1700000000000",
			"methods": "sayHello,sayHelloAsync,greet,list,get,put,delete", "pid": "12345", "generic": "false",
			"deprecated": "false", "dynamic": "true", "category": "providers", "path": "com.example.DemoService",
			"protocol": "dubbo", "port": "20880", "background": "false", "service-name-mapping": "true",
			"executor-management-mode": "isolation", "file-cache": "true", "prefer.serialization": "fastjson2,hessian2",
			"serialization": "hessian2", "threads": "200", "weight": "100"}
		si.Hosts = append(si.Hosts, Instance{InstanceID: "10.0.0." + string(rune('0'+i%10)) + "#20880#DEFAULT#DEFAULT_GROUP@@providers:com.example.DemoService:1.0.0:",
			IP: "10.0.0." + string(rune('0'+i%10)), Port: 20880, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true,
			ClusterName: "DEFAULT", ServiceName: "DEFAULT_GROUP@@providers:com.example.DemoService:1.0.0:", Metadata: md,
			InstanceHeartBeatInterval: 5000, InstanceHeartBeatTimeOut: 15000, IPDeleteTimeout: 30000})
	}
	return si
}

// BenchmarkEncodeServiceInfo: pre-encoding a ServiceInfo of 10 Dubbo
// providers, what the first query, subscribe answer or push of a new
// snapshot pays, against encoding/json of the same value.
//
//	go test -run '^$' -bench EncodeServiceInfo -benchmem ./wire/
func BenchmarkEncodeServiceInfo(b *testing.B) {
	si := dubboHosts(10)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeServiceInfo(&si); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&si); err != nil {
				b.Fatal(err)
			}
		}
	})
}
