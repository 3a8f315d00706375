package zkwatch

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unique"
)

// Parse errors; test with errors.Is.
var (
	// ErrBadURL: a node name is not a Dubbo URL.
	ErrBadURL = errors.New("zkwatch: not a dubbo URL")
	// ErrUndecodable: a node name is not valid URL encoding.
	ErrUndecodable = errors.New("zkwatch: undecodable node name")
)

// URL is a parsed Dubbo URL: protocol://host:port/path?k=v&k=v.
// Values are kept as written (Dubbo encodes the whole string once; the
// values are not encoded again).
type URL struct {
	Protocol string
	Host     string // IPv6 without brackets, e.g. "::1"
	Port     int    // 0 when absent
	Path     string // without the leading '/'
	Params   map[string]string
}

// ParseURL parses a Dubbo URL that has already been decoded once (a provider
// node's name after url.QueryUnescape). It splits the query at '&' and each
// pair at its first '='; it never unescapes again.
func ParseURL(s string) (URL, error) {
	var u URL
	proto, rest, ok := strings.Cut(s, "://")
	if !ok || proto == "" {
		return u, fmt.Errorf("%w: no protocol in %q", ErrBadURL, clip(s))
	}
	for i := 0; i < len(proto); i++ {
		c := proto[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == '_') {
			return u, fmt.Errorf("%w: bad protocol in %q", ErrBadURL, clip(s))
		}
	}
	u.Protocol = intern(proto)
	rest, query, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	u.Path = intern(strings.TrimLeft(path, "/"))
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:] // drop user:password
	}
	host, port, err := splitHostPort(authority)
	if err != nil {
		return URL{}, fmt.Errorf("%w: %v in %q", ErrBadURL, err, clip(s))
	}
	u.Host, u.Port = intern(host), port // one host serves all of its application's services
	u.Params = parseQuery(query)
	return u, nil
}

func splitHostPort(a string) (string, int, error) {
	if a == "" {
		return "", 0, errors.New("no host")
	}
	var host, port string
	switch {
	case a[0] == '[':
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", 0, errors.New("unclosed '['")
		}
		host = a[1:end]
		tail := a[end+1:]
		if tail != "" {
			if tail[0] != ':' {
				return "", 0, errors.New("junk after ']'")
			}
			port = tail[1:]
		}
		if net.ParseIP(host) == nil {
			return "", 0, errors.New("bad IPv6 host")
		}
	case strings.Count(a, ":") > 1:
		// Unbracketed IPv6: the whole thing, or address:port.
		if net.ParseIP(a) != nil {
			host = a
		} else if i := strings.LastIndexByte(a, ':'); net.ParseIP(a[:i]) != nil {
			host, port = a[:i], a[i+1:]
		} else {
			return "", 0, errors.New("bad host")
		}
	default:
		host, port, _ = strings.Cut(a, ":")
	}
	if host == "" {
		return "", 0, errors.New("no host")
	}
	if strings.ContainsAny(host, " /?#&") {
		return "", 0, errors.New("bad host")
	}
	if port == "" {
		return host, 0, nil
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, p, nil
}

func parseQuery(q string) map[string]string {
	if q == "" {
		return map[string]string{}
	}
	m := make(map[string]string, strings.Count(q, "&")+1)
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			continue
		}
		k = intern(k)
		if perProvider[k] {
			v = strings.Clone(v)
		} else {
			v = intern(v)
		}
		m[k] = v // last one wins, as in Dubbo
	}
	return m
}

// intern returns the canonical copy of s (package unique). A parsed URL
// holds no substring of the decoded node name: the keys and most values
// repeat across the providers of an application or of the estate
// (application, dubbo, methods, release, side...), so the metadata of
// 30,000 providers shares one copy of each instead of every provider's
// metadata keeping its whole decoded name (~600 bytes) alive. The runtime
// drops a canonical copy once nothing refers to it, so the table is bounded
// by the live providers, not by the changes seen.
func intern(s string) string { return unique.Make(s).Value() }

// perProvider are the parameters whose values differ from one provider
// node to the next: copied, not interned (an interned value costs a table
// entry for a string nobody shares).
var perProvider = map[string]bool{"timestamp": true, "pid": true}

// Param returns a parameter ("" when absent).
func (u URL) Param(k string) string { return u.Params[k] }

// Interface is the `interface` parameter, or the path for simplified URLs.
func (u URL) Interface() string {
	if v := u.Params["interface"]; v != "" {
		return v
	}
	return u.Path
}

// Version is the `version` parameter ("" when unset).
func (u URL) Version() string { return u.Params["version"] }

// Group is the `group` parameter ("" when unset).
func (u URL) Group() string { return u.Params["group"] }

// Application is the `application` parameter.
func (u URL) Application() string { return u.Params["application"] }

// Addr is host:port, with IPv6 hosts in brackets ("[::1]:20880").
func (u URL) Addr() string {
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// Weight is the load-balancing weight: `weight`, 100 when absent or not a
// number (Dubbo's default). An explicit 0 stays 0 (dubbo-go registers it).
func (u URL) Weight() int {
	v, ok := u.Params["weight"]
	if !ok || v == "" {
		return 100
	}
	w, err := strconv.Atoi(v)
	if err != nil {
		return 100
	}
	if w < 0 {
		return 0
	}
	return w
}

// Dynamic reports whether the node is ephemeral by Dubbo's rule
// (dynamic=false means a persistent provider).
func (u URL) Dynamic() bool { return u.Params["dynamic"] != "false" }

// Timestamp is the `timestamp` parameter in milliseconds: dubbo-go writes
// seconds, Java milliseconds; values below 1e11 are taken as seconds. 0 when
// absent or not a number.
func (u URL) Timestamp() int64 {
	return normalizeTimestamp(u.Params["timestamp"])
}

func normalizeTimestamp(s string) int64 {
	if s == "" {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	if v < 1e11 { // seconds: before 1973 in ms, after year 5000 in s
		v *= 1000
	}
	return v
}

// String rebuilds the URL with sorted keys (not necessarily the node name).
func (u URL) String() string {
	var b strings.Builder
	b.WriteString(u.Protocol)
	b.WriteString("://")
	b.WriteString(u.Addr())
	b.WriteByte('/')
	b.WriteString(u.Path)
	keys := sortedKeys(u.Params)
	for i, k := range keys {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(u.Params[k])
	}
	return b.String()
}

// decodeNodeName decodes a znode name exactly once (Java URLEncoder and Go
// QueryEscape both decode with QueryUnescape).
func decodeNodeName(raw string) (string, error) {
	s, err := url.QueryUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrUndecodable, clip(raw), err)
	}
	return s, nil
}

// ParseProviderNode decodes and parses a provider node's name.
func ParseProviderNode(raw string) (URL, error) {
	s, err := decodeNodeName(raw)
	if err != nil {
		return URL{}, err
	}
	return ParseURL(s)
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
