package configsvc

import (
	"fmt"
	"net/url"
	"strings"
)

// The HTTP listener's encoding (Nacos MD5Util): the Listening-Configs form
// field holds one line per config, each ended by \x01, fields separated by
// \x02: "dataId\x02group\x02md5\x01" or, with a tenant,
// "dataId\x02group\x02md5\x02tenant\x01". The answer names the changed
// configs as "dataId\x02group[\x02tenant]\x01" lines, URL-encoded.
const (
	wordSep = '\x02'
	lineSep = '\x01'
)

// MaxListeningConfigs bounds one listener request's configs (Nacos: 10,000).
const MaxListeningConfigs = 10000

// ParseListeningConfigs parses a Listening-Configs value. Every line must
// end with \x01 and have 3 or 4 fields with a valid dataId, group and
// tenant; errors wrap ErrInvalidParam and nothing is returned.
func ParseListeningConfigs(s string) ([]ListenContext, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: Listening-Configs is empty", ErrInvalidParam)
	}
	if s[len(s)-1] != lineSep {
		return nil, fmt.Errorf("%w: Listening-Configs does not end with \\x01", ErrInvalidParam)
	}
	lines := strings.Split(s[:len(s)-1], string(lineSep))
	if len(lines) > MaxListeningConfigs {
		return nil, fmt.Errorf("%w: Listening-Configs names %d configs (max %d)", ErrInvalidParam, len(lines), MaxListeningConfigs)
	}
	out := make([]ListenContext, 0, len(lines))
	seen := make(map[Key]bool, len(lines))
	for i, line := range lines {
		f := strings.Split(line, string(wordSep))
		var c ListenContext
		switch len(f) {
		case 3:
			c = ListenContext{Key: Key{DataID: f[0], Group: f[1]}, MD5: f[2]}
		case 4:
			c = ListenContext{Key: Key{DataID: f[0], Group: f[1], Tenant: f[3]}, MD5: f[2]}
		default:
			return nil, fmt.Errorf("%w: Listening-Configs line %d has %d fields (want 3 or 4)", ErrInvalidParam, i+1, len(f))
		}
		if err := ValidateKey(c.Key); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if len(c.MD5) > 64 {
			return nil, fmt.Errorf("%w: Listening-Configs line %d: md5 too long", ErrInvalidParam, i+1)
		}
		if seen[c.Key] {
			continue
		}
		seen[c.Key] = true
		out = append(out, c)
	}
	return out, nil
}

// EncodeChanged is the listener's answer for changed keys (Nacos
// MD5Util.compareMd5ResultString): URL-encoded lines, "" for none.
func EncodeChanged(keys []Key) string {
	if len(keys) == 0 {
		return ""
	}
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.DataID)
		b.WriteByte(wordSep)
		b.WriteString(k.Group)
		if k.Tenant != "" {
			b.WriteByte(wordSep)
			b.WriteString(k.Tenant)
		}
		b.WriteByte(lineSep)
	}
	return url.QueryEscape(b.String())
}

// DecodeChanged parses a listener's answer (for clients and tests).
func DecodeChanged(s string) ([]Key, error) {
	raw, err := url.QueryUnescape(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidParam, err)
	}
	if raw == "" {
		return nil, nil
	}
	if raw[len(raw)-1] != lineSep {
		return nil, fmt.Errorf("%w: answer does not end with \\x01", ErrInvalidParam)
	}
	var out []Key
	for _, line := range strings.Split(raw[:len(raw)-1], string(lineSep)) {
		f := strings.Split(line, string(wordSep))
		switch len(f) {
		case 2:
			out = append(out, Key{DataID: f[0], Group: f[1]})
		case 3:
			out = append(out, Key{DataID: f[0], Group: f[1], Tenant: f[2]})
		default:
			return nil, fmt.Errorf("%w: answer line %q", ErrInvalidParam, line)
		}
	}
	return out, nil
}
