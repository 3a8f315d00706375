package udppush

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The expected bytes below are what Nacos 2.5.1's UdpPushService builds:
// prepareHostsData puts "type" and "data" in a HashMap(2) and
// prepareAckEntry adds "lastRefTime"; Jackson writes the map in HashMap
// iteration order. With Java's String.hashCode, "type" and "data" fall in
// bucket 0 (in insertion order) and "lastRefTime" in bucket 1 of the
// 4-bucket table, hence type, data, lastRefTime. data is the ServiceInfo
// JSON as a string (Jackson escapes only '"', '\' and control characters);
// lastRefTime is a long.
func TestEnvelopeBytesAsNacos(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		ref        int64
		want       string
	}{
		{"service info", `{"name":"DEFAULT_GROUP@@demo","clusters":"","hosts":[]}`, 12345,
			`{"type":"dom","data":"{\"name\":\"DEFAULT_GROUP@@demo\",\"clusters\":\"\",\"hosts\":[]}","lastRefTime":12345}`},
		{"escapes as Jackson", "a\\b\n\t\r\b\f\x01\x1f/<>&é\u2028", 7,
			`{"type":"dom","data":"a\\b\n\t\r\b\f\u0001\u001F/<>&é` + "\u2028" + `","lastRefTime":7}`},
		{"invalid utf-8 as Java decodes it", "a\xffb", 1, `{"type":"dom","data":"a` + "\uFFFD" + `b","lastRefTime":1}`},
		{"negative ref", `{}`, -5, `{"type":"dom","data":"{}","lastRefTime":-5}`},
	} {
		got, err := EncodeEnvelope([]byte(tc.data), tc.ref, DefaultCompressThreshold)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// compressIfNecessary: "if (dataBytes.length < 1024) return dataBytes",
// else GZIPOutputStream. The envelope of data "a"×k with a one-digit ref is
// k+40 bytes long.
func TestEnvelopeCompressionThreshold(t *testing.T) {
	for _, tc := range []struct {
		k    int
		gzip bool
	}{{983, false}, {984, true}, {20000, true}} {
		data := strings.Repeat("a", tc.k)
		got, err := EncodeEnvelope([]byte(data), 1, DefaultCompressThreshold)
		if err != nil {
			t.Fatal(err)
		}
		plain := `{"type":"dom","data":"` + data + `","lastRefTime":1}`
		if isGzip := bytes.HasPrefix(got, []byte{0x1f, 0x8b}); isGzip != tc.gzip {
			t.Fatalf("k=%d (%d bytes): gzip %v, want %v", tc.k, len(plain), isGzip, tc.gzip)
		}
		if !tc.gzip {
			if string(got) != plain || len(got) != 1023 {
				t.Fatalf("k=%d: plain envelope %d bytes differs", tc.k, len(got))
			}
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(got))
		if err != nil {
			t.Fatal(err)
		}
		dec, err := io.ReadAll(zr)
		if err != nil || string(dec) != plain {
			t.Fatalf("k=%d: decompressed %d bytes (err %v), want the plain envelope", tc.k, len(dec), err)
		}
	}
	// Threshold 0: never compressed.
	got, _ := EncodeEnvelope(bytes.Repeat([]byte("a"), 5000), 1, 0)
	if bytes.HasPrefix(got, []byte{0x1f, 0x8b}) {
		t.Fatal("threshold 0 compressed")
	}
}

// The 1.x clients read the envelope as {type, data string, lastRefTime
// long} (nacos-sdk-go v1.1.4 PushData, Java PushReceiver.PushPacket).
func TestEnvelopeDecodesAsClients(t *testing.T) {
	data := `{"name":"g@@s","hosts":[{"ip":"10.0.0.1","metadata":{"k":"<v>\"q\""}}]}`
	b, _ := EncodeEnvelope([]byte(data), 1764650000123456789, DefaultCompressThreshold)
	var p struct {
		Type        string `json:"type"`
		Data        string `json:"data"`
		LastRefTime int64  `json:"lastRefTime"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "dom" || p.Data != data || p.LastRefTime != 1764650000123456789 {
		t.Fatalf("decoded %+v", p)
	}
}

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		in  string
		ref int64
		ok  bool
	}{
		// nacos-sdk-go v1.1.4: json.Marshal of a map[string]string.
		{`{"data":"","lastRefTime":"1764650000123456789","type":"push-ack"}`, 1764650000123456789, true},
		// Java 1.x PushReceiver, built by string concatenation.
		{`{"type": "push-ack", "lastRefTime":"42", "data":""}`, 42, true},
		{"  {\"type\":\"push-ack\",\"lastRefTime\":42}\n", 42, true},
		{`{"type":"dump-ack","lastRefTime":"3","data":"{}"}`, 3, true},
		{`{"type":"unknow-ack","lastRefTime":"3","data":""}`, 3, true},
		{`{"type":"unknown-ack","lastRefTime":"-3"}`, -3, true},
		{`{"type":"push-ack","lastRefTime":"9223372036854775807"}`, 9223372036854775807, true},
		{`{"type":"push-ack","lastRefTime":"9223372036854775808"}`, 0, false},
		{`{"type":"push-ack","lastRefTime":1.5}`, 0, false},
		{`{"type":"push-ack","lastRefTime":"x"}`, 0, false},
		{`{"type":"push-ack","lastRefTime":null}`, 0, false},
		{`{"type":"push-ack","lastRefTime":true}`, 0, false},
		{`{"type":"push-ack"}`, 0, false},
		{`{"type":"dom","lastRefTime":"1"}`, 0, false},
		{`{"lastRefTime":"1"}`, 0, false},
		{`{"type":"push-ack","lastRefTime":"1"`, 0, false},
		{`[1]`, 0, false},
		{``, 0, false},
		{"\x1f\x8b\x08garbage", 0, false},
		{`{"type":"push-ack","lastRefTime":"1"} trailing`, 0, false},
	} {
		ref, ok := ParseAck([]byte(tc.in))
		if ok != tc.ok || ref != tc.ref {
			t.Errorf("ParseAck(%q) = %d, %v; want %d, %v", tc.in, ref, ok, tc.ref, tc.ok)
		}
	}
}

// FuzzParseAck: any bytes parse without panicking; whatever is accepted
// is an ack whose id survives the clients' own encodings.
func FuzzParseAck(f *testing.F) {
	for _, s := range []string{
		`{"data":"","lastRefTime":"1","type":"push-ack"}`,
		`{"type": "push-ack", "lastRefTime":"42", "data":""}`,
		`{"type":"push-ack","lastRefTime":42}`,
		`{"type":"push-ack","lastRefTime":"\u0034\u0032"}`,
		"", "{", "\x00\xff", `{"type":"push-ack","lastRefTime":"1","type":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ref, ok := ParseAck(b)
		if !ok {
			return
		}
		goAck, _ := json.Marshal(map[string]string{"type": "push-ack", "lastRefTime": strconv.FormatInt(ref, 10), "data": ""})
		if r2, ok2 := ParseAck(goAck); !ok2 || r2 != ref {
			t.Fatalf("re-encoded ack %s: %d, %v; want %d", goAck, r2, ok2, ref)
		}
	})
}

// FuzzEnvelope: any data survives the envelope as the clients decode it
// (valid UTF-8 exactly; invalid sequences as U+FFFD).
func FuzzEnvelope(f *testing.F) {
	f.Add([]byte(`{"name":"a@@b","hosts":[]}`), int64(1))
	f.Add([]byte("\x00\x01\"\\\xff"), int64(-1))
	f.Fuzz(func(t *testing.T, data []byte, ref int64) {
		b, err := EncodeEnvelope(data, ref, 64)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		var p struct {
			Type        string `json:"type"`
			Data        string `json:"data"`
			LastRefTime int64  `json:"lastRefTime"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if want := perByteValid(data); p.Type != "dom" || p.LastRefTime != ref || p.Data != want {
			t.Fatalf("decoded %+v from %q", p, data)
		}
	})
}

// perByteValid replaces each byte of an invalid UTF-8 sequence with U+FFFD.
func perByteValid(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		sb.WriteRune(r) // RuneError for an invalid byte, n == 1
		i += n
	}
	return sb.String()
}
