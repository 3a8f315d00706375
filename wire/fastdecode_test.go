package wire

import (
	"encoding/json"
	"reflect"
	"testing"

	"google.golang.org/protobuf/types/known/anypb"
)

var fastDecodeSeeds = []struct {
	body string
	fast bool // the fast path takes it
}{
	// nacos-sdk-go v2.3.5
	{`{"requestId":"","namespace":"public","serviceName":"demo.svc","groupName":"DEFAULT_GROUP","module":"naming","cluster":"","healthyOnly":false,"udpPort":0}`, true},
	// Ferry's wire.Encode
	{`{"module":"naming","namespace":"public","serviceName":"query.5","groupName":"DEFAULT_GROUP","cluster":"C1,C2","healthyOnly":true,"udpPort":53123}`, true},
	{`{}`, true},
	{`{"udpPort":-7,"udpPort":8,"cluster":"a"}`, true},
	// the Java client
	{`{"headers":{},"requestId":"1","namespace":"public","serviceName":"s","groupName":"g","module":"naming","cluster":"","healthyOnly":false,"udpPort":0}`, true},
	// Declined: encoding/json decides.
	{`{"headers":{"a":"b"},"serviceName":"s"}`, false},
	{`{"cluster":{}}`, false},
	{`{"ServiceName":"s"}`, false},
	{`{"serviceName":"s\u0041"}`, false},
	{`{"serviceName":"é"}`, false},
	{`{"serviceName": "s"}`, false},
	{`{"serviceName":null}`, false},
	{`{"udpPort":1e3}`, false},
	{`{"udpPort":1.5}`, false},
	{`{"udpPort":01}`, false},
	{`{"udpPort":-0}`, false},
	{`{"udpPort":12345678901}`, false},
	{`{"udpPort":"5"}`, false},
	{`{"healthyOnly":1}`, false},
	{`{"serviceName":"s"}x`, false},
	{`{"serviceName":"s",}`, false},
	{`{"serviceName":"s"`, false},
	{`{"serviceName"}`, false},
	{``, false},
	{`[]`, false},
}

func TestFastDecodeServiceQuery(t *testing.T) {
	for _, tt := range fastDecodeSeeds {
		var fast ServiceQueryRequest
		if got := fast.decodeFast([]byte(tt.body)); got != tt.fast {
			t.Errorf("%s: fast path took it: %v, want %v", tt.body, got, tt.fast)
		}
		if !tt.fast && !reflect.DeepEqual(fast, ServiceQueryRequest{}) {
			t.Errorf("%s: declined but left %+v", tt.body, fast)
		}
		checkFastEqualsJSON(t, []byte(tt.body))
	}
	// Through the codec, headers still merge.
	m, err := Decode(&Payload{Metadata: &Metadata{Type: TypeServiceQueryRequest, Headers: map[string]string{"app": "x"}},
		Body: &anypb.Any{Value: []byte(fastDecodeSeeds[0].body)}})
	if err != nil {
		t.Fatal(err)
	}
	if r := m.(*ServiceQueryRequest); r.ServiceName != "demo.svc" || r.Namespace != "public" || r.Headers["app"] != "x" {
		t.Fatalf("%+v", r)
	}
}

// checkFastEqualsJSON: when the fast path takes a body, encoding/json
// accepts it too and decodes the same request.
func checkFastEqualsJSON(t *testing.T, body []byte) {
	t.Helper()
	var fast, slow ServiceQueryRequest
	if !fast.decodeFast(body) {
		return
	}
	if err := json.Unmarshal(body, &slow); err != nil {
		t.Fatalf("fast path took %q, encoding/json refuses it: %v", body, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q:\nfast %+v\njson %+v", body, fast, slow)
	}
}

func FuzzFastDecode(f *testing.F) {
	for _, s := range fastDecodeSeeds {
		f.Add([]byte(s.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFastEqualsJSON(t, body)
	})
}
