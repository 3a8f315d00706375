package wire

// A fast path for decoding the hottest request, ServiceQueryRequest, as the
// SDKs send it: a compact, flat JSON object of plain strings, booleans and
// small integers. Anything else (whitespace, escapes, non-ASCII, nested
// values, unknown or differently cased keys, null, malformed input) makes it
// decline, and the body goes through encoding/json as before, which then
// decides (and reports errors). When it accepts, the result is exactly what
// encoding/json gives (FuzzFastDecode checks it).

// fastDecoder is a message that may decode its own body; false leaves the
// message zero and the body to encoding/json.
type fastDecoder interface {
	decodeFast(b []byte) bool
}

// flatValue is one scanned value: a string's content (no quotes), or the
// literal of a boolean or an integer.
type flatValue struct {
	kind byte // 's' string, 'b' boolean, 'n' integer, 'o' empty object
	raw  []byte
	b    bool
	n    int
}

// scanFlat walks a flat object {"k":v,...} and calls set for each member in
// order; it returns false on anything outside the subset, or when set does.
func scanFlat(b []byte, set func(key []byte, v flatValue) bool) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	i := 1
	if b[i] == '}' {
		return i == len(b)-1
	}
	var v flatValue
	for {
		key, next, ok := scanString(b, i)
		if !ok || next >= len(b) || b[next] != ':' {
			return false
		}
		i = next + 1
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '"':
			s, next, ok := scanString(b, i)
			if !ok {
				return false
			}
			v = flatValue{kind: 's', raw: s}
			i = next
		case c == '{' && hasAt(b, i, "{}"):
			v = flatValue{kind: 'o'}
			i += 2
		case c == 't' && hasAt(b, i, "true"):
			v = flatValue{kind: 'b', b: true}
			i += 4
		case c == 'f' && hasAt(b, i, "false"):
			v = flatValue{kind: 'b'}
			i += 5
		case c == '-' || c >= '0' && c <= '9':
			n, next, ok := scanInt(b, i)
			if !ok {
				return false
			}
			v = flatValue{kind: 'n', n: n}
			i = next
		default:
			return false
		}
		if !set(key, v) {
			return false
		}
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return i == len(b)-1
		default:
			return false
		}
	}
}

func hasAt(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// scanString reads a string at b[i] made of printable ASCII without
// escapes; it returns its content and the index after the closing quote.
func scanString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// scanInt reads 0 or -?[1-9][0-9]{0,8} (JSON, and safely inside an int).
func scanInt(b []byte, i int) (int, int, bool) {
	neg := false
	if b[i] == '-' {
		neg = true
		i++
	}
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		return 0, 0, false
	}
	if b[i] == '0' {
		if neg || i+1 < len(b) && (b[i+1] >= '0' && b[i+1] <= '9' || b[i+1] == '.' || b[i+1] == 'e' || b[i+1] == 'E') {
			return 0, 0, false
		}
		return 0, i + 1, true
	}
	n, start := 0, i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-start >= 9 {
			return 0, 0, false
		}
		n = n*10 + int(b[i]-'0')
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}

// str converts a scanned string, without allocating for the usual values.
func str(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "public":
		return "public"
	case "DEFAULT_GROUP":
		return "DEFAULT_GROUP"
	case ModuleNaming:
		return ModuleNaming
	}
	return string(b)
}

func (r *ServiceQueryRequest) decodeFast(b []byte) bool {
	ok := scanFlat(b, func(key []byte, v flatValue) bool {
		switch string(key) {
		case "headers": // the Java client's (emptied) headers: not a field
			return v.kind == 'o'
		case "requestId":
			if v.kind == 's' {
				r.RequestID = str(v.raw)
				return true
			}
		case "module":
			if v.kind == 's' {
				r.Module = str(v.raw)
				return true
			}
		case "namespace":
			if v.kind == 's' {
				r.Namespace = str(v.raw)
				return true
			}
		case "serviceName":
			if v.kind == 's' {
				r.ServiceName = str(v.raw)
				return true
			}
		case "groupName":
			if v.kind == 's' {
				r.GroupName = str(v.raw)
				return true
			}
		case "cluster":
			if v.kind == 's' {
				r.Cluster = str(v.raw)
				return true
			}
		case "healthyOnly":
			if v.kind == 'b' {
				r.HealthyOnly = v.b
				return true
			}
		case "udpPort":
			if v.kind == 'n' {
				r.UDPPort = v.n
				return true
			}
		}
		return false
	})
	if !ok {
		*r = ServiceQueryRequest{}
	}
	return ok
}
