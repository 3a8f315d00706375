package configsvc

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func do(t *testing.T, method, u string, form url.Values, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func newHTTP(t *testing.T, mod func(*Config)) (*Service, *memStore, string) {
	st := newMemStore()
	s := newTestService(t, st, mod)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, st, srv.URL
}

func TestHTTPv1(t *testing.T) {
	_, st, base := newHTTP(t, func(c *Config) { c.MaxContentBytes = 1024 })
	u := base + "/nacos/v1/cs/configs"
	q := url.Values{"dataId": {"app.props"}, "group": {"G"}, "tenant": {"dev"}}
	if code, body, _ := do(t, "GET", u+"?"+q.Encode(), nil, nil); code != 404 || body != "config data not exist" {
		t.Fatalf("get missing: %d %q", code, body)
	}
	f := url.Values{"dataId": {"app.props"}, "group": {"G"}, "tenant": {"dev"}, "content": {"a=1\nb=2"}, "type": {"properties"}}
	if code, body, _ := do(t, "POST", u, f, nil); code != 200 || body != "true" {
		t.Fatalf("publish: %d %q", code, body)
	}
	code, body, h := do(t, "GET", u+"?"+q.Encode(), nil, nil)
	if code != 200 || body != "a=1\nb=2" || h.Get("Content-MD5") != MD5("a=1\nb=2") || h.Get("Config-Type") != "properties" {
		t.Fatalf("get: %d %q %v", code, body, h)
	}
	// CAS: stale md5 refused (form field or header), current accepted.
	f.Set("content", "a=2")
	f.Set("casMd5", MD5("old"))
	if code, body, _ := do(t, "POST", u, f, nil); code != 409 || !strings.Contains(body, "cas") {
		t.Fatalf("stale cas: %d %q", code, body)
	}
	f.Del("casMd5")
	if code, body, _ := do(t, "POST", u, f, map[string]string{"casMd5": MD5("a=1\nb=2")}); code != 200 {
		t.Fatalf("cas: %d %q", code, body)
	}
	if code, body, _ := do(t, "DELETE", u+"?"+q.Encode(), nil, nil); code != 200 || body != "true" {
		t.Fatalf("delete: %d %q", code, body)
	}
	if st.ConfigCount() != 0 {
		t.Fatal("not deleted")
	}
	// Bad input: a clear 400 (or 413), nothing stored.
	bad := []struct {
		form url.Values
		code int
		want string
	}{
		{url.Values{"group": {"G"}, "content": {"x"}}, 400, "dataId is required"},
		{url.Values{"dataId": {"d"}, "content": {"x"}}, 400, "group is required"},
		{url.Values{"dataId": {"d d"}, "group": {"G"}, "content": {"x"}}, 400, "characters outside"},
		{url.Values{"dataId": {"d"}, "group": {"G"}}, 400, "content is required"},
		{url.Values{"dataId": {"d"}, "group": {"G"}, "content": {strings.Repeat("x", 1025)}}, 400, "content is 1025 bytes (max 1024)"},
		{url.Values{"dataId": {"d"}, "group": {"G"}, "content": {strings.Repeat("\x01", 70000)}}, 413, "request body over"},
	}
	for _, b := range bad {
		code, body, _ := do(t, "POST", u, b.form, nil)
		if code != b.code || !strings.Contains(body, b.want) {
			t.Errorf("publish %v: %d %q, want %d %q", b.form.Get("dataId"), code, body, b.code, b.want)
		}
	}
	if st.ConfigCount() != 0 || st.puts != 2 {
		t.Fatalf("bad input stored something: %d configs, %d puts", st.ConfigCount(), st.puts)
	}
}

func TestHTTPv2(t *testing.T) {
	_, _, base := newHTTP(t, nil)
	u := base + "/nacos/v2/cs/config"
	type result struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	parse := func(body string) result {
		var r result
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("%v in %q", err, body)
		}
		return r
	}
	f := url.Values{"dataId": {"d"}, "group": {"G"}, "namespaceId": {"ns1"}, "content": {"hello"}}
	if code, body, _ := do(t, "POST", u, f, nil); code != 200 || parse(body).Code != 0 || string(parse(body).Data) != "true" {
		t.Fatalf("publish: %d %s", code, body)
	}
	q := url.Values{"dataId": {"d"}, "group": {"G"}, "namespaceId": {"ns1"}}
	if code, body, _ := do(t, "GET", u+"?"+q.Encode(), nil, nil); code != 200 || string(parse(body).Data) != `"hello"` {
		t.Fatalf("get: %d %s", code, body)
	}
	if code, body, _ := do(t, "GET", u+"?dataId=d&group=G", nil, nil); code != 404 || parse(body).Code != 20004 {
		t.Fatalf("get in another namespace: %d %s", code, body)
	}
	if code, body, _ := do(t, "GET", u+"?dataId=d", nil, nil); code != 400 || parse(body).Code != 20002 || !strings.Contains(parse(body).Message, "group") {
		t.Fatalf("get without group: %d %s", code, body)
	}
	if code, body, _ := do(t, "DELETE", u+"?"+q.Encode(), nil, nil); code != 200 || string(parse(body).Data) != "true" {
		t.Fatalf("delete: %d %s", code, body)
	}
}

func listening(keys ...string) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(1)
	}
	return b.String()
}

func TestHTTPListener(t *testing.T) {
	s, _, base := newHTTP(t, func(c *Config) { c.LongPollDelay = 0 })
	u := base + "/nacos/v1/cs/configs/listener"
	k := Key{Tenant: "dev", Group: "G", DataID: "d"}
	lc := url.Values{"Listening-Configs": {listening("d\x02G\x02\x02dev")}}

	// Times out empty when nothing changes (short timeout).
	start := time.Now()
	code, body, _ := do(t, "POST", u, lc, map[string]string{"Long-Pulling-Timeout": "200"})
	if code != 200 || body != "" || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("timeout: %d %q after %v", code, body, time.Since(start))
	}
	// Returns when the config changes.
	type answer struct {
		code int
		body string
	}
	done := make(chan answer)
	go func() {
		code, body, _ := do(t, "POST", u, lc, map[string]string{"Long-Pulling-Timeout": "30000"})
		done <- answer{code, body}
	}()
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.nPoll == 1 })
	if err := s.Publish(k, "v1", "", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-done:
		if a.code != 200 || a.body != "d%02G%02dev%01" {
			t.Fatalf("changed: %d %q", a.code, a.body)
		}
		if keys, err := DecodeChanged(a.body); err != nil || !slices.Equal(keys, []Key{k}) {
			t.Fatalf("decode %q: %v %v", a.body, keys, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not return on change")
	}
	// Up to date (3-field line without tenant for another config): empty at once with no-hangup.
	lc2 := url.Values{"Listening-Configs": {listening("d\x02G\x02"+MD5("v1")+"\x02dev", "e\x02G\x02")}}
	if code, body, _ := do(t, "POST", u, lc2, map[string]string{"Long-Pulling-Timeout": "30000", "Long-Pulling-No-Hangup": "true"}); code != 200 || body != "" {
		t.Fatalf("no hangup: %d %q", code, body)
	}
	// v2 path, no timeout header: answers at once.
	if code, body, _ := do(t, "POST", base+"/nacos/v2/cs/config/listener", lc, nil); code != 200 || body != "d%02G%02dev%01" {
		t.Fatalf("v2 listener: %d %q", code, body)
	}
	// Malformed.
	for _, bad := range []struct {
		form url.Values
		hdr  map[string]string
		want string
	}{
		{url.Values{}, nil, "Listening-Configs is empty"},
		{url.Values{"Listening-Configs": {"d\x02G\x02md5"}}, nil, "does not end"},
		{url.Values{"Listening-Configs": {listening("d\x02G")}}, nil, "has 2 fields"},
		{url.Values{"Listening-Configs": {listening("d\x02G\x02m\x02t\x02x")}}, nil, "has 5 fields"},
		{url.Values{"Listening-Configs": {listening("d d\x02G\x02m")}}, nil, "characters outside"},
		{lc, map[string]string{"Long-Pulling-Timeout": "soon"}, "not a number"},
	} {
		code, body, _ := do(t, "POST", u, bad.form, bad.hdr)
		if code != 400 || !strings.Contains(body, bad.want) {
			t.Errorf("%q: %d %q, want 400 %q", bad.form.Get("Listening-Configs"), code, body, bad.want)
		}
	}
}
