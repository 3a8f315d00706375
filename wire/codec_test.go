package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// jsonEqual compares two JSON documents structurally.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON mismatch\n got: %s\nwant: %s", got, want)
	}
}

// TestEncodeJSON checks each body against what Nacos 2.5.1 (Jackson,
// NON_NULL) or nacos-sdk-go v2.3.5 produces for the same object.
func TestEncodeJSON(t *testing.T) {
	inst := Instance{InstanceID: "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@demo", IP: "10.0.0.1", Port: 8080, Weight: 1,
		Healthy: true, Enabled: true, Ephemeral: true, ClusterName: "DEFAULT", ServiceName: "DEFAULT_GROUP@@demo",
		Metadata: map[string]string{"k": "v"}, InstanceHeartBeatInterval: 5000, InstanceHeartBeatTimeOut: 15000, IPDeleteTimeout: 30000}
	instJSON := `{"instanceId":"10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@demo","ip":"10.0.0.1","port":8080,"weight":1,"healthy":true,"enabled":true,"ephemeral":true,"clusterName":"DEFAULT","serviceName":"DEFAULT_GROUP@@demo","metadata":{"k":"v"},"instanceHeartBeatInterval":5000,"instanceHeartBeatTimeOut":15000,"ipDeleteTimeout":30000}`
	si := ServiceInfo{Name: "demo", GroupName: "DEFAULT_GROUP", Clusters: "", CacheMillis: 10000, Hosts: []Instance{inst}, LastRefTime: 1700000000000, Valid: true}
	siJSON := `{"name":"demo","groupName":"DEFAULT_GROUP","clusters":"","cacheMillis":10000,"hosts":[` + instJSON + `],"lastRefTime":1700000000000,"checksum":"","allIPs":false,"reachProtectionThreshold":false,"valid":true}`
	failed := &InstanceResponse{Type: RegisterInstance}
	failed.SetError(CodeInvalidParam, "bad ip")
	tests := []struct {
		name string
		msg  Message
		typ  string
		want string
	}{
		{"server check request (Java)", &ServerCheckRequest{}, "ServerCheckRequest", `{"module":"internal"}`},
		{"server check response", &ServerCheckResponse{ResponseHeader: Okay(), ConnectionID: "1_127.0.0.1_5000", FerryBatchBeat: true},
			"ServerCheckResponse", `{"resultCode":200,"errorCode":0,"success":true,"connectionId":"1_127.0.0.1_5000","supportAbilityNegotiation":false,"ferryBatchBeat":true}`},
		{"health check response", &HealthCheckResponse{ResponseHeader: Okay()}, "HealthCheckResponse", `{"resultCode":200,"errorCode":0,"success":true}`},
		{"error response 302", NewErrorResponse(CodeNoHandler, "RequestHandler Not Found"), "ErrorResponse",
			`{"resultCode":500,"errorCode":302,"success":false,"message":"RequestHandler Not Found"}`},
		{"typed failure", failed, "InstanceResponse", `{"resultCode":500,"errorCode":400,"success":false,"message":"bad ip","type":"registerInstance"}`},
		{"instance request", &InstanceRequest{NamingHeader: NamingHeader{Namespace: "public", ServiceName: "demo", GroupName: "DEFAULT_GROUP"}, Type: RegisterInstance, Instance: inst},
			"InstanceRequest", `{"module":"naming","namespace":"public","serviceName":"demo","groupName":"DEFAULT_GROUP","type":"registerInstance","instance":` + instJSON + `}`},
		{"batch instance request", &BatchInstanceRequest{NamingHeader: NamingHeader{Namespace: "public", ServiceName: "demo", GroupName: "DEFAULT_GROUP"}, Type: BatchRegisterInstance, Instances: []Instance{inst}},
			"BatchInstanceRequest", `{"module":"naming","namespace":"public","serviceName":"demo","groupName":"DEFAULT_GROUP","type":"batchRegisterInstance","instances":[` + instJSON + `]}`},
		{"query response", &QueryServiceResponse{ResponseHeader: Okay(), ServiceInfo: si}, "QueryServiceResponse",
			`{"resultCode":200,"errorCode":0,"success":true,"serviceInfo":` + siJSON + `}`},
		{"subscribe response", &SubscribeServiceResponse{ResponseHeader: ResponseHeader{ResultCode: 200, Message: "success"}, ServiceInfo: si}, "SubscribeServiceResponse",
			`{"resultCode":200,"errorCode":0,"success":true,"message":"success","serviceInfo":` + siJSON + `}`},
		{"service list response", &ServiceListResponse{ResponseHeader: Okay(), Count: 2, ServiceNames: []string{"a", "b"}}, "ServiceListResponse",
			`{"resultCode":200,"errorCode":0,"success":true,"count":2,"serviceNames":["a","b"]}`},
		{"notify subscriber", &NotifySubscriberRequest{NamingHeader: NamingHeader{RequestHeader: RequestHeader{RequestID: "7"}}, ServiceInfo: si}, "NotifySubscriberRequest",
			`{"requestId":"7","module":"naming","namespace":"","serviceName":"","groupName":"","serviceInfo":` + siJSON + `}`},
		{"client detection", &ClientDetectionRequest{RequestHeader: RequestHeader{RequestID: "3"}}, "ClientDetectionRequest", `{"requestId":"3","module":"internal"}`},
		{"connect reset", &ConnectResetRequest{ServerIP: "127.0.0.2", ServerPort: "8848"}, "ConnectResetRequest", `{"module":"internal","serverIp":"127.0.0.2","serverPort":"8848"}`},
		{"setup ack", &SetupAckRequest{AbilityTable: map[string]bool{"supportPersistentInstanceByGrpc": true}}, "SetupAckRequest",
			`{"abilityTable":{"supportPersistentInstanceByGrpc":true},"module":"internal"}`},
		{"batch beat response", &FerryBatchBeatResponse{ResponseHeader: Okay(), ClientBeatInterval: 5000, Results: []BeatResult{{Status: BeatOK}, {Status: BeatRedirect, Redirect: "10.0.0.2:8848"}}},
			"FerryBatchBeatResponse", `{"resultCode":200,"errorCode":0,"success":true,"clientBeatInterval":5000,"results":[{"status":"ok"},{"status":"redirect","redirect":"10.0.0.2:8848"}]}`},
		{"batch deregister request", &FerryBatchDeregisterRequest{Groups: []BeatGroup{
			{Namespace: "public", GroupName: "DEFAULT_GROUP", ServiceName: "providers:a", Addrs: []string{"10.0.0.1:20880", "[::1]:20880"}},
			{Namespace: "public", GroupName: "DEFAULT_GROUP", ServiceName: "providers:b", Cluster: "c1", Addrs: []string{"10.0.0.2:1"}}}},
			"FerryBatchDeregisterRequest", `{"module":"naming","groups":[{"namespace":"public","groupName":"DEFAULT_GROUP","serviceName":"providers:a","addrs":["10.0.0.1:20880","[::1]:20880"]},{"namespace":"public","groupName":"DEFAULT_GROUP","serviceName":"providers:b","cluster":"c1","addrs":["10.0.0.2:1"]}]}`},
		{"batch deregister response, all ok", &FerryBatchDeregisterResponse{ResponseHeader: Okay()},
			"FerryBatchDeregisterResponse", `{"resultCode":200,"errorCode":0,"success":true}`},
		{"batch deregister response, exceptions", &FerryBatchDeregisterResponse{ResponseHeader: Okay(), Exceptions: []BeatException{
			{Index: 1, BeatResult: BeatResult{Status: BeatRedirect, Redirect: "10.0.0.2:8848"}}, {Index: 2, BeatResult: BeatResult{Status: BeatInvalid, Message: "bad"}}}},
			"FerryBatchDeregisterResponse", `{"resultCode":200,"errorCode":0,"success":true,"exceptions":[{"index":1,"status":"redirect","redirect":"10.0.0.2:8848"},{"index":2,"status":"invalid","message":"bad"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Encode(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.GetMetadata().GetType(); got != tt.typ {
				t.Errorf("type = %q, want %q", got, tt.typ)
			}
			if p.GetBody().GetTypeUrl() != "" {
				t.Errorf("type_url = %q, want empty", p.GetBody().GetTypeUrl())
			}
			jsonEqual(t, p.GetBody().GetValue(), tt.want)
			back, err := Decode(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.msg) {
				t.Errorf("round trip\n got: %+v\nwant: %+v", back, tt.msg)
			}
		})
	}
}

// TestDecodeSDKBodies decodes bodies exactly as nacos-sdk-go v2.3.5 and the
// Java client send them (reference §2.6 transcript).
func TestDecodeSDKBodies(t *testing.T) {
	tests := []struct {
		typ     string
		headers map[string]string
		body    string
		check   func(t *testing.T, m Message)
	}{
		{"ConnectionSetupRequest", nil, `{"requestId":"","module":"internal","clientVersion":"Nacos-Go-Client:v2.3.5","tenant":"","labels":{"module":"naming","source":"sdk"},"clientAbilities":{}}`,
			func(t *testing.T, m Message) {
				r := m.(*ConnectionSetupRequest)
				if r.Labels["module"] != "naming" || r.ClientVersion != "Nacos-Go-Client:v2.3.5" || r.AbilityTable != nil {
					t.Errorf("%+v", r)
				}
			}},
		{"ConnectionSetupRequest", nil, `{"headers":{},"module":"internal","clientVersion":"Nacos-Java-Client:v2.5.1","labels":{"module":"naming"},"abilityTable":{"supportPersistentInstanceByGrpc":true}}`,
			func(t *testing.T, m Message) {
				if r := m.(*ConnectionSetupRequest); !r.AbilityTable["supportPersistentInstanceByGrpc"] {
					t.Errorf("%+v", r)
				}
			}},
		{"SubscribeServiceRequest", map[string]string{"app": ""}, `{"requestId":"","namespace":"public","serviceName":"demo.svc","groupName":"DEFAULT_GROUP","module":"naming","subscribe":true,"clusters":""}`,
			func(t *testing.T, m Message) {
				r := m.(*SubscribeServiceRequest)
				if !r.Subscribe || r.ServiceName != "demo.svc" || r.GroupName != "DEFAULT_GROUP" || r.Namespace != "public" {
					t.Errorf("%+v", r)
				}
				if _, ok := r.Headers["app"]; !ok {
					t.Errorf("headers not merged: %v", r.Headers)
				}
			}},
		{"InstanceRequest", nil, `{"requestId":"","namespace":"public","serviceName":"demo.svc","groupName":"DEFAULT_GROUP","module":"naming","type":"deregisterInstance","instance":{"instanceId":"","ip":"10.0.0.1","port":8080,"weight":0,"healthy":false,"enabled":false,"ephemeral":true,"clusterName":"","serviceName":"","metadata":null,"instanceHeartBeatInterval":0,"ipDeleteTimeout":0,"instanceHeartBeatTimeOut":0}}`,
			func(t *testing.T, m Message) {
				r := m.(*InstanceRequest)
				if r.Type != DeregisterInstance || r.Instance.IP != "10.0.0.1" || r.Instance.Port != 8080 {
					t.Errorf("%+v", r)
				}
			}},
		{"ServiceListRequest", nil, `{"requestId":"","namespace":"public","serviceName":"","groupName":"DEFAULT_GROUP","module":"naming","pageNo":1,"pageSize":10,"selector":""}`,
			func(t *testing.T, m Message) {
				if r := m.(*ServiceListRequest); r.PageNo != 1 || r.PageSize != 10 {
					t.Errorf("%+v", r)
				}
			}},
		{"ClientDetectionResponse", nil, `{"resultCode":200,"errorCode":0,"success":false,"message":"","requestId":"cd-1"}`,
			func(t *testing.T, m Message) {
				r := m.(*ClientDetectionResponse)
				if !r.OK() || r.RequestID != "cd-1" {
					t.Errorf("Go SDK ack must be OK by resultCode: %+v", r)
				}
			}},
		{"NotifySubscriberResponse", nil, `{"resultCode":200,"errorCode":0,"success":true,"message":"","requestId":"1","unknownField":[1,2]}`,
			func(t *testing.T, m Message) {
				if r := m.(*NotifySubscriberResponse); !r.OK() || r.RequestID != "1" {
					t.Errorf("%+v", r)
				}
			}},
		{"HealthCheckRequest", nil, ``, func(t *testing.T, m Message) {}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			m, err := Decode(&Payload{Metadata: &Metadata{Type: tt.typ, Headers: tt.headers}, Body: &anypb.Any{Value: []byte(tt.body)}})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, m)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	small := NewCodec(64)
	tests := []struct {
		name string
		c    *Codec
		typ  string
		body string
		want error
	}{
		{"unknown type", NewCodec(0), "NoSuchRequest", `{}`, ErrUnknownType},
		{"empty type", NewCodec(0), "", `{}`, ErrUnknownType},
		{"malformed json", NewCodec(0), "InstanceRequest", `{"instance":`, ErrMalformed},
		{"wrong field type", NewCodec(0), "InstanceRequest", `{"instance":{"port":"x"}}`, ErrMalformed},
		{"too large", small, "InstanceRequest", `{"serviceName":"` + strings.Repeat("x", 100) + `"}`, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Decode(&Payload{Metadata: &Metadata{Type: tt.typ}, Body: &anypb.Any{Value: []byte(tt.body)}})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := small.Encode(&InstanceRequest{NamingHeader: NamingHeader{ServiceName: strings.Repeat("x", 100)}}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encode: %v", err)
	}
}

func TestCodecRegister(t *testing.T) {
	c := NewCodec(0)
	if c.Known("FerryExampleRequest") {
		t.Fatal("known before Register")
	}
	c.Register("FerryExampleRequest", func() Message { return &HealthCheckRequest{} })
	if !c.Known("FerryExampleRequest") || !c.Known(TypeInstanceRequest) {
		t.Fatal("not known after Register")
	}
	if _, err := c.Decode(&Payload{Metadata: &Metadata{Type: "FerryExampleRequest"}, Body: &anypb.Any{Value: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
}

// TestEveryTypeKnown: every type name constant decodes to a message whose
// TypeName is that name.
func TestEveryTypeKnown(t *testing.T) {
	for _, n := range []string{TypeServerCheckRequest, TypeServerCheckResponse, TypeConnectionSetupRequest, TypeSetupAckRequest,
		TypeSetupAckResponse, TypeHealthCheckRequest, TypeHealthCheckResponse, TypeClientDetectionRequest, TypeClientDetectionResponse,
		TypeConnectResetRequest, TypeConnectResetResponse, TypeErrorResponse, TypeInstanceRequest, TypeInstanceResponse,
		TypeBatchInstanceRequest, TypeBatchInstanceResponse, TypePersistentInstanceRequest, TypeServiceQueryRequest,
		TypeQueryServiceResponse, TypeServiceListRequest, TypeServiceListResponse, TypeSubscribeServiceRequest,
		TypeSubscribeServiceResponse, TypeNotifySubscriberRequest, TypeNotifySubscriberResponse, TypeFerryBatchBeatRequest,
		TypeFerryBatchBeatResponse, TypeFerryBatchDeregisterRequest, TypeFerryBatchDeregisterResponse} {
		m, ok := New(n)
		if !ok || m.TypeName() != n {
			t.Errorf("%s: %v %v", n, ok, m)
		}
		_, isReq := m.(Request)
		_, isResp := m.(Response)
		if isReq == isResp {
			t.Errorf("%s: request=%v response=%v", n, isReq, isResp)
		}
	}
}

// TestProtoWire checks the proto field numbers against the Nacos .proto by
// decoding bytes laid out by hand: Payload{metadata=2{type=3,clientIp=8,
// headers=7}, body=3{value=2}}.
func TestProtoWire(t *testing.T) {
	p := &Payload{Metadata: &Metadata{Type: "T", ClientIp: "1.2.3.4", Headers: map[string]string{"a": "b"}}, Body: &anypb.Any{Value: []byte("{}")}}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x12, 0x14, // field 2 (metadata), len 20
		0x1a, 0x01, 'T', // field 3 type
		0x3a, 0x06, 0x0a, 0x01, 'a', 0x12, 0x01, 'b', // field 7 headers entry
		0x42, 0x07, '1', '.', '2', '.', '3', '.', '4', // field 8 clientIp
		0x1a, 0x04, 0x12, 0x02, '{', '}', // field 3 body: Any.value (2)
	}
	if string(b) != string(want) {
		t.Fatalf("wire bytes\n got % x\nwant % x", b, want)
	}
}

func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seeds", "*.json"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		typ := strings.TrimSuffix(filepath.Base(s), ".json")
		if i := strings.IndexByte(typ, '_'); i >= 0 {
			typ = typ[:i]
		}
		f.Add(typ, b)
	}
	f.Add("InstanceRequest", []byte(`{"instance":{"port":1e400}}`))
	f.Add("Nope", []byte(`{}`))
	c := NewCodec(1 << 16)
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		m, err := c.Decode(&Payload{Metadata: &Metadata{Type: typ}, Body: &anypb.Any{Value: body}})
		if err != nil {
			if !errors.Is(err, ErrUnknownType) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if m.TypeName() != typ {
			t.Fatalf("decoded %s as %s", typ, m.TypeName())
		}
		if _, err := c.Encode(m); err != nil && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func TestLightBeatItemJSON(t *testing.T) {
	p, err := Encode(&FerryBatchBeatRequest{Beats: []BeatItem{{Namespace: "public", GroupName: "G", ServiceName: "s", IP: "10.0.0.1", Port: 80}}})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, p.GetBody().GetValue(), `{"module":"naming","registerIfUnknown":false,"beats":[{"namespace":"public","groupName":"G","serviceName":"s","ip":"10.0.0.1","port":80}]}`)
	m, _ := Decode(p)
	b := m.(*FerryBatchBeatRequest).Beats[0]
	if ip, port, _ := b.Addr(); b.Full() || ip != "10.0.0.1" || port != 80 {
		t.Fatalf("%+v", b)
	}
	full := BeatItem{Instance: Instance{IP: "10.0.0.2", Port: 81, ClusterName: "C"}, IP: "ignored"}
	if ip, port, cl := full.Addr(); !full.Full() || ip != "10.0.0.2" || port != 81 || cl != "C" {
		t.Fatalf("%+v", full)
	}
}

func TestBeatAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ip   string
		port int
	}{
		{"10.0.0.1:20880", "10.0.0.1", 20880},
		{"[fe80::1]:80", "fe80::1", 80},
		{"host.example:1", "host.example", 1},
		{"10.0.0.1", "", 0},
		{"10.0.0.1:", "", 0},
		{":80", "", 0},
		{"[]:80", "", 0},
		{"10.0.0.1:0", "", 0},
		{"10.0.0.1:65536", "", 0},
		{"10.0.0.1:x", "", 0},
		{"", "", 0},
	} {
		ip, port := SplitBeatAddr(tc.in)
		if ip != tc.ip || port != tc.port {
			t.Errorf("SplitBeatAddr(%q) = %q %d, want %q %d", tc.in, ip, port, tc.ip, tc.port)
		}
		if tc.port != 0 {
			if back := BeatAddr(ip, port); back != tc.in {
				t.Errorf("BeatAddr(%q, %d) = %q, want %q", ip, port, back, tc.in)
			}
		}
	}
}

func TestBatchBeatAnswer(t *testing.T) {
	req := &FerryBatchBeatRequest{
		Beats:  []BeatItem{{ServiceName: "a", IP: "10.0.0.1", Port: 1}},
		Groups: []BeatGroup{{ServiceName: "b", Cluster: "c1", Addrs: []string{"10.0.0.2:2", "[::1]:3"}}, {ServiceName: "d", Addrs: []string{"bad"}}},
	}
	items := req.Items()
	if req.Len() != 4 || len(items) != 4 || items[1].ServiceName != "b" || items[1].IP != "10.0.0.2" || items[1].Port != 2 ||
		items[1].Cluster != "c1" || items[2].IP != "::1" || items[3].IP != "bad" || items[3].Port != 0 {
		t.Fatalf("items %+v", items)
	}
	all := []BeatResult{{Status: BeatUnknown}, {Status: BeatOK}, {Status: BeatRedirect, Redirect: "n:8848"}, {Status: BeatInvalid, Message: "m"}}
	var resp FerryBatchBeatResponse
	resp.Answer(req, all)
	if len(resp.Results) != 1 || len(resp.Exceptions) != 2 || resp.Exceptions[0].Index != 1 || resp.Exceptions[1].Index != 2 {
		t.Fatalf("answer %+v", resp)
	}
	// Through the codec and back.
	back, err := viaCodec(t, &resp).(*FerryBatchBeatResponse).All(req)
	if err != nil || !reflect.DeepEqual(back, all) {
		t.Fatalf("All = %+v, %v; want %+v", back, err, all)
	}
	// Answers that do not match the request are errors, never a panic.
	for _, bad := range []FerryBatchBeatResponse{
		{Results: nil},
		{Results: []BeatResult{{Status: BeatOK}}, Exceptions: []BeatException{{Index: 3}}},
		{Results: []BeatResult{{Status: BeatOK}}, Exceptions: []BeatException{{Index: -1}}},
	} {
		if _, err := bad.All(req); err == nil {
			t.Errorf("All(%+v) accepted", bad)
		}
	}
}

// viaCodec encodes m and decodes it again.
func viaCodec(t *testing.T, m Message) Message {
	t.Helper()
	p, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := NewCodec(0).Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestBatchDeregisterAnswer(t *testing.T) {
	req := &FerryBatchDeregisterRequest{
		Groups: []BeatGroup{{ServiceName: "b", Cluster: "c1", Addrs: []string{"10.0.0.2:2", "[::1]:3"}}, {ServiceName: "d", Addrs: []string{"bad"}}},
	}
	items := req.Items()
	if req.Len() != 3 || len(items) != 3 || items[0].ServiceName != "b" || items[0].IP != "10.0.0.2" || items[0].Port != 2 ||
		items[0].Cluster != "c1" || items[1].IP != "::1" || items[2].ServiceName != "d" || items[2].IP != "bad" || items[2].Port != 0 {
		t.Fatalf("items %+v", items)
	}
	all := []BeatResult{{Status: BeatOK}, {Status: BeatRedirect, Redirect: "n:8848"}, {Status: BeatInvalid, Message: "m"}}
	var resp FerryBatchDeregisterResponse
	resp.Answer(all)
	if len(resp.Exceptions) != 2 || resp.Exceptions[0].Index != 1 || resp.Exceptions[1].Index != 2 {
		t.Fatalf("answer %+v", resp)
	}
	back, err := viaCodec(t, &resp).(*FerryBatchDeregisterResponse).All(req)
	if err != nil || !reflect.DeepEqual(back, all) {
		t.Fatalf("All = %+v, %v; want %+v", back, err, all)
	}
	// Answers that do not match the request are errors, never a panic.
	for _, bad := range []FerryBatchDeregisterResponse{
		{Exceptions: []BeatException{{Index: 3}}},
		{Exceptions: []BeatException{{Index: -1}}},
	} {
		if _, err := bad.All(req); err == nil {
			t.Errorf("All(%+v) accepted", bad)
		}
	}
}

func TestAddrListJSON(t *testing.T) {
	for _, in := range []string{
		`["10.0.0.1:1","[::1]:2"]`, `[]`, `[ "a" , "b" ]`, `null`, `["a\"b","c"]`, `["é:1"]`, "[\n\"x\"\n]",
	} {
		var got AddrList
		var want []string
		errGot, errWant := json.Unmarshal([]byte(in), &got), json.Unmarshal([]byte(in), &want)
		if (errGot == nil) != (errWant == nil) || !reflect.DeepEqual([]string(got), want) {
			t.Errorf("%s: AddrList %q (%v), []string %q (%v)", in, got, errGot, want, errWant)
		}
	}
	for _, in := range []string{`[1]`, `["a",1]`, `{"a":1}`, `"a"`} {
		var got AddrList
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("%s accepted as %q", in, got)
		}
	}
}

func FuzzAddrList(f *testing.F) {
	for _, s := range []string{`["10.0.0.1:1","[::1]:2"]`, `[]`, `["a\"b"]`, `[ "a" ,"b"]`, `[1]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var got AddrList
		var want []string
		errGot, errWant := json.Unmarshal([]byte(in), &got), json.Unmarshal([]byte(in), &want)
		if (errGot == nil) != (errWant == nil) {
			t.Fatalf("%q: AddrList err %v, []string err %v", in, errGot, errWant)
		}
		if errGot == nil && !reflect.DeepEqual([]string(got), want) {
			t.Fatalf("%q: AddrList %q, []string %q", in, got, want)
		}
	})
}

// BenchmarkDecodeBeatGroups: decoding one merged beat of 5,400 known
// instances in 600 groups (a worker's interval at 27,000 instances).
func BenchmarkDecodeBeatGroups(b *testing.B) {
	req := &FerryBatchBeatRequest{Beats: []BeatItem{}}
	for g := 0; g < 600; g++ {
		grp := BeatGroup{Namespace: "public", GroupName: "DEFAULT_GROUP", ServiceName: fmt.Sprintf("providers:com.example.load.app%04d.Service%05d:1.0.1:", g/10, g)}
		for i := 0; i < 9; i++ {
			grp.Addrs = append(grp.Addrs, fmt.Sprintf("10.0.%d.%d:20880", g/250, i))
		}
		req.Groups = append(req.Groups, grp)
	}
	p, err := Encode(req)
	if err != nil {
		b.Fatal(err)
	}
	c := NewCodec(0)
	b.SetBytes(int64(len(p.GetBody().GetValue())))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Decode(p); err != nil {
			b.Fatal(err)
		}
	}
}
