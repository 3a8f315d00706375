package udppush

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The wire format, as Nacos 2.5.1 writes and reads it (docs/nacos-udp-push.md
// has the source references):
//
//   - push (UdpPushService.prepareHostsData / prepareAckEntry): a JSON object
//     written by Jackson from a HashMap, whose iteration order is
//     type, data, lastRefTime:
//     {"type":"dom","data":"<ServiceInfo JSON as a string>","lastRefTime":<n>}
//     gzip-compressed when the UTF-8 bytes are 1024 or more
//     (compressIfNecessary: "length < 1024" stays plain);
//   - ack (nacos-sdk-go v1 PushReceiver, Java 1.x PushReceiver): a JSON
//     object with type "push-ack" (or "dump-ack", "unknown-ack"; the Go SDK
//     writes "unknow-ack"), lastRefTime echoed as a string, data "". The
//     server (UdpConnector.UdpReceiver) reads lastRefTime as a long, so a
//     number is accepted too.

// DefaultCompressThreshold is Nacos' size from which a push is gzipped.
const DefaultCompressThreshold = 1024

// MaxDatagram is the largest UDP payload over IPv4 (65535 − 8 − 20).
const MaxDatagram = 65507

// EncodeEnvelope returns the datagram that carries data (the ServiceInfo
// JSON) with push id ref: Nacos' envelope, gzipped when it is at least
// threshold bytes long (threshold ≤ 0: never).
func EncodeEnvelope(data []byte, ref int64, threshold int) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(data) + len(data)/8 + 64)
	b.WriteString(`{"type":"dom","data":`)
	writeJacksonString(&b, data)
	b.WriteString(`,"lastRefTime":`)
	b.WriteString(strconv.FormatInt(ref, 10))
	b.WriteByte('}')
	if threshold <= 0 || b.Len() < threshold {
		return b.Bytes(), nil
	}
	var z bytes.Buffer
	z.Grow(b.Len() / 4)
	w := gzip.NewWriter(&z) // java.util.zip.GZIPOutputStream: default level
	if _, err := w.Write(b.Bytes()); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return z.Bytes(), nil
}

// writeJacksonString writes s as a JSON string the way Jackson does: '"'
// and '\' escaped, control characters as \b \t \n \f \r or \u00XX
// (upper-case hex), everything else (non-ASCII, '/', '<') as is. Invalid
// UTF-8 becomes U+FFFD, as Java's decoding of the bytes would.
func writeJacksonString(b *bytes.Buffer, s []byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				b.WriteRune(utf8.RuneError)
			} else {
				b.Write(s[i : i+n])
			}
			i += n
			continue
		}
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
		default:
			b.WriteByte(c)
		}
		i++
	}
	b.WriteByte('"')
}

// ackTypes are the ack types clients send; Nacos' server matches an ack by
// its sender and lastRefTime only, whatever the type.
var ackTypes = map[string]bool{"push-ack": true, "dump-ack": true, "unknown-ack": true, "unknow-ack": true}

// ParseAck reads a client's ack datagram and returns the push id
// (lastRefTime) it acknowledges. ok is false for anything else: not one
// JSON object, no ack type, no integer lastRefTime.
func ParseAck(b []byte) (ref int64, ok bool) {
	b = bytes.TrimSpace(b) // Nacos trims the text before parsing
	if len(b) == 0 || b[0] != '{' {
		return 0, false
	}
	var a struct {
		Type        string          `json:"type"`
		LastRefTime json.RawMessage `json:"lastRefTime"`
	}
	if err := json.Unmarshal(b, &a); err != nil || !ackTypes[a.Type] {
		return 0, false
	}
	raw := string(a.LastRefTime)
	if strings.HasPrefix(raw, `"`) {
		if err := json.Unmarshal(a.LastRefTime, &raw); err != nil {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}
