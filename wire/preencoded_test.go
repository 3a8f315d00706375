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
