package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestConfigJSON pins the config messages' JSON as Nacos and nacos-sdk-go
// v2.3.5 spell it, in both directions.
func TestConfigJSON(t *testing.T) {
	cases := []struct {
		name string
		msg  Message
		want []string // substrings of the encoded body
		in   string   // a body as a client sends it, decoded into a fresh msg
	}{
		{
			name: "query request",
			msg:  &ConfigQueryRequest{ConfigHeader: ConfigHeader{Group: "G", DataID: "d", Tenant: "t"}},
			want: []string{`"group":"G"`, `"dataId":"d"`, `"tenant":"t"`, `"module":"config"`},
			in:   `{"headers":{},"requestId":"1","group":"G","dataId":"d","tenant":"t","module":"config","tag":""}`,
		},
		{
			name: "query response",
			msg:  &ConfigQueryResponse{ResponseHeader: Okay(), Content: "c", MD5: "m", ContentType: "yaml", LastModified: 42},
			want: []string{`"resultCode":200`, `"content":"c"`, `"md5":"m"`, `"contentType":"yaml"`, `"lastModified":42`, `"encryptedDataKey":""`, `"isBeta":false`},
		},
		{
			name: "publish request",
			msg: &ConfigPublishRequest{ConfigHeader: ConfigHeader{Group: "G", DataID: "d"}, Content: "c", CasMD5: "x",
				AdditionMap: map[string]string{"type": "json"}},
			want: []string{`"content":"c"`, `"casMd5":"x"`, `"additionMap":{"type":"json"}`},
			in:   `{"group":"G","dataId":"d","tenant":"","module":"config","content":"c","casMd5":"x","additionMap":{"type":"json","tag":""}}`,
		},
		{
			name: "batch listen",
			msg: &ConfigBatchListenRequest{Listen: true, ConfigListenContexts: []ConfigListenContext{
				{Group: "G", MD5: "m", DataID: "d", Tenant: "t"}}},
			want: []string{`"listen":true`, `"configListenContexts":[{"group":"G","md5":"m","dataId":"d","tenant":"t"}]`},
			in:   `{"group":"","dataId":"","tenant":"","module":"config","listen":true,"configListenContexts":[{"group":"G","md5":"m","dataId":"d","tenant":"t"}]}`,
		},
		{
			name: "batch listen response",
			msg:  &ConfigChangeBatchListenResponse{ResponseHeader: Okay(), ChangedConfigs: []ConfigContext{{Group: "G", DataID: "d"}}},
			want: []string{`"changedConfigs":[{"group":"G","dataId":"d","tenant":""}]`},
		},
		{
			name: "change notify",
			msg:  &ConfigChangeNotifyRequest{ConfigHeader: ConfigHeader{Group: "G", DataID: "d", Tenant: "t"}},
			want: []string{`"group":"G"`, `"dataId":"d"`, `"tenant":"t"`, `"module":"config"`},
		},
		{name: "remove request", msg: &ConfigRemoveRequest{ConfigHeader: ConfigHeader{Group: "G", DataID: "d"}}, want: []string{`"dataId":"d"`}},
		{name: "publish response", msg: &ConfigPublishResponse{ResponseHeader: Okay()}, want: []string{`"success":true`}},
		{name: "remove response", msg: &ConfigRemoveResponse{ResponseHeader: Okay()}, want: []string{`"resultCode":200`}},
		{name: "notify response", msg: &ConfigChangeNotifyResponse{ResponseHeader: Okay()}, want: []string{`"resultCode":200`}},
	}
	c := NewCodec(0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.Encode(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if p.GetMetadata().GetType() != tc.msg.TypeName() {
				t.Fatalf("type %q", p.GetMetadata().GetType())
			}
			body := string(p.GetBody().GetValue())
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body %s lacks %s", body, w)
				}
			}
			if strings.Contains(body, `"tag"`) {
				t.Errorf("body %s carries tag (a bool in the Go SDK, a string in Java)", body)
			}
			back, err := c.Decode(p)
			if err != nil {
				t.Fatal(err)
			}
			b1, _ := json.Marshal(tc.msg)
			b2, _ := json.Marshal(back)
			if string(b1) != string(b2) {
				t.Fatalf("round trip: %s != %s", b1, b2)
			}
			if tc.in != "" {
				p.Body.Value = []byte(tc.in)
				if _, err := c.Decode(p); err != nil {
					t.Fatalf("decode client body: %v", err)
				}
			}
		})
	}
}

// TestConfigNotFound pins "config not found": ConfigQueryResponse with
// resultCode 500, errorCode 300 (ConfigQueryResponse.CONFIG_NOT_FOUND).
func TestConfigNotFound(t *testing.T) {
	r := &ConfigQueryResponse{}
	r.SetError(CodeConfigNotFound, "config data not exist")
	p, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	body := string(p.GetBody().GetValue())
	for _, w := range []string{`"resultCode":500`, `"errorCode":300`, `"success":false`} {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %s", body, w)
		}
	}
	for _, typ := range []string{TypeConfigQueryRequest, TypeConfigPublishRequest, TypeConfigRemoveRequest,
		TypeConfigBatchListenRequest, TypeConfigChangeNotifyResponse, TypeConfigChangeBatchListenResponse} {
		if m, ok := New(typ); !ok || m.TypeName() != typ {
			t.Errorf("New(%q) = %v, %v", typ, m, ok)
		}
	}
}
