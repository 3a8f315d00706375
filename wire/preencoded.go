package wire

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
)

// ServiceInfoJSON is a ServiceInfo encoded ahead of time, all but its
// lastRefTime, which is new on every answer. A server that answers many
// queries from one unchanged service state encodes the hosts once and
// splices the lastRefTime in (QueryServiceResponse.Encoded). It is
// immutable once built and safe to share between goroutines.
type ServiceInfoJSON struct {
	head []byte // from "{" to the end of "hosts"
	tail []byte // from after lastRefTime to the closing "}"
}

// EncodeServiceInfo pre-encodes si; si.LastRefTime is ignored. The bytes
// are exactly those json.Marshal gives for si (with its lastRefTime); the
// hosts are written without reflection (appendInstances), which is most of
// the cost of a first answer from a new snapshot.
func EncodeServiceInfo(si *ServiceInfo) (*ServiceInfoJSON, error) {
	// The head is written into a pooled scratch buffer and copied out at
	// its exact size: it is kept (memoised) as long as its snapshot.
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	head := (*bp)[:0]
	head = append(head, `{"name":`...)
	head = appendJSONString(head, si.Name)
	head = append(head, `,"groupName":`...)
	head = appendJSONString(head, si.GroupName)
	head = append(head, `,"clusters":`...)
	head = appendJSONString(head, si.Clusters)
	head = append(head, `,"cacheMillis":`...)
	head = strconv.AppendInt(head, si.CacheMillis, 10)
	head = append(head, `,"hosts":`...)
	head, err := appendInstances(head, si.Hosts)
	if err != nil {
		return nil, err
	}
	if cap(head) <= maxScratch {
		*bp = head
	}
	head = append([]byte(nil), head...)
	tail := make([]byte, 0, len(si.Checksum)+80)
	tail = append(tail, `,"checksum":`...)
	tail = appendJSONString(tail, si.Checksum)
	tail = append(tail, `,"allIPs":`...)
	tail = strconv.AppendBool(tail, si.AllIPs)
	tail = append(tail, `,"reachProtectionThreshold":`...)
	tail = strconv.AppendBool(tail, si.ReachProtectionThreshold)
	tail = append(tail, `,"valid":`...)
	tail = strconv.AppendBool(tail, si.Valid)
	tail = append(tail, '}')
	return &ServiceInfoJSON{head: head, tail: tail}, nil
}

// Len is the encoded length without the lastRefTime digits.
func (e *ServiceInfoJSON) Len() int { return len(e.head) + len(e.tail) + len(`,"lastRefTime":`) }

// AppendJSON appends the ServiceInfo's JSON with lastRefTime to dst.
func (e *ServiceInfoJSON) AppendJSON(dst []byte, lastRefTime int64) []byte {
	dst = append(dst, e.head...)
	dst = append(dst, `,"lastRefTime":`...)
	dst = strconv.AppendInt(dst, lastRefTime, 10)
	return append(dst, e.tail...)
}

// scratch holds the buffers EncodeServiceInfo writes into; one that grew
// past maxScratch is not kept.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxScratch = 1 << 20

// errNotFinite is json.Marshal's refusal of a NaN or infinite weight.
var errNotFinite = errors.New("wire: weight is not a finite number")

// appendInstances appends hosts as json.Marshal writes them (null for a nil
// slice).
func appendInstances(dst []byte, hosts []Instance) ([]byte, error) {
	if hosts == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '[')
	for i := range hosts {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendInstance(dst, &hosts[i]); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

// appendInstance appends in as json.Marshal writes an Instance (its fields
// in declaration order).
func appendInstance(dst []byte, in *Instance) ([]byte, error) {
	dst = append(dst, `{"instanceId":`...)
	dst = appendJSONString(dst, in.InstanceID)
	dst = append(dst, `,"ip":`...)
	dst = appendJSONString(dst, in.IP)
	dst = append(dst, `,"port":`...)
	dst = strconv.AppendInt(dst, int64(in.Port), 10)
	dst = append(dst, `,"weight":`...)
	var err error
	if dst, err = appendJSONFloat(dst, in.Weight); err != nil {
		return nil, err
	}
	dst = append(dst, `,"healthy":`...)
	dst = strconv.AppendBool(dst, in.Healthy)
	dst = append(dst, `,"enabled":`...)
	dst = strconv.AppendBool(dst, in.Enabled)
	dst = append(dst, `,"ephemeral":`...)
	dst = strconv.AppendBool(dst, in.Ephemeral)
	dst = append(dst, `,"clusterName":`...)
	dst = appendJSONString(dst, in.ClusterName)
	dst = append(dst, `,"serviceName":`...)
	dst = appendJSONString(dst, in.ServiceName)
	dst = append(dst, `,"metadata":`...)
	dst = appendStringMap(dst, in.Metadata)
	dst = append(dst, `,"instanceHeartBeatInterval":`...)
	dst = strconv.AppendInt(dst, in.InstanceHeartBeatInterval, 10)
	dst = append(dst, `,"instanceHeartBeatTimeOut":`...)
	dst = strconv.AppendInt(dst, in.InstanceHeartBeatTimeOut, 10)
	dst = append(dst, `,"ipDeleteTimeout":`...)
	dst = strconv.AppendInt(dst, in.IPDeleteTimeout, 10)
	return append(dst, '}'), nil
}

// appendJSONFloat appends f as encoding/json writes a float64: the
// shortest representation, in exponent form below 1e-6 and from 1e21, the
// exponent without a leading zero.
func appendJSONFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, errNotFinite
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// appendStringMap appends m as json.Marshal writes a map[string]string:
// null when nil, keys sorted.
func appendStringMap(dst []byte, m map[string]string) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	var buf [32]string // a Dubbo provider has about 25 keys
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, m[k])
	}
	return append(dst, '}')
}

// appendResponseHeader appends h's fields as json.Marshal writes them at
// the start of a response object: `{"resultCode":…` up to the last header
// field, without the closing brace.
func appendResponseHeader(dst []byte, h *ResponseHeader) []byte {
	dst = append(dst, `{"resultCode":`...)
	dst = strconv.AppendInt(dst, int64(h.ResultCode), 10)
	dst = append(dst, `,"errorCode":`...)
	dst = strconv.AppendInt(dst, int64(h.ErrorCode), 10)
	dst = append(dst, `,"success":`...)
	dst = strconv.AppendBool(dst, h.Success)
	if h.Message != "" {
		dst = append(dst, `,"message":`...)
		dst = appendJSONString(dst, h.Message)
	}
	if h.RequestID != "" {
		dst = append(dst, `,"requestId":`...)
		dst = appendJSONString(dst, h.RequestID)
	}
	return dst
}

// appendJSONString appends s as encoding/json writes it: plain printable
// ASCII is copied, anything else (escapes, HTML-escaped <>&, non-ASCII,
// invalid UTF-8) goes through json.Marshal.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// bodyAppender is a message that can write its own JSON body (exactly what
// json.Marshal would write), or declines with false.
type bodyAppender interface {
	appendBody() ([]byte, bool)
}

// appendBody writes the response with its pre-encoded ServiceInfo; false
// when Encoded is nil.
func (r *QueryServiceResponse) appendBody() ([]byte, bool) {
	return appendEncodedResponse(&r.ResponseHeader, r.Encoded, r.ServiceInfo.LastRefTime)
}

// appendBody writes the response with its pre-encoded ServiceInfo; false
// when Encoded is nil.
func (r *SubscribeServiceResponse) appendBody() ([]byte, bool) {
	return appendEncodedResponse(&r.ResponseHeader, r.Encoded, r.ServiceInfo.LastRefTime)
}

func appendEncodedResponse(h *ResponseHeader, e *ServiceInfoJSON, lastRefTime int64) ([]byte, bool) {
	if e == nil {
		return nil, false
	}
	b := make([]byte, 0, e.Len()+len(h.Message)+len(h.RequestID)+96)
	b = appendResponseHeader(b, h)
	b = append(b, `,"serviceInfo":`...)
	b = e.AppendJSON(b, lastRefTime)
	return append(b, '}'), true
}

// appendBody writes the push with its pre-encoded ServiceInfo (its fields
// in json.Marshal's order: the embedded headers', then serviceInfo); false
// when Encoded is nil.
func (r *NotifySubscriberRequest) appendBody() ([]byte, bool) {
	if r.Encoded == nil {
		return nil, false
	}
	b := make([]byte, 0, r.Encoded.Len()+len(r.RequestID)+len(r.Module)+len(r.Namespace)+len(r.ServiceName)+len(r.GroupName)+120)
	b = append(b, '{')
	if r.RequestID != "" {
		b = append(b, `"requestId":`...)
		b = appendJSONString(b, r.RequestID)
		b = append(b, ',')
	}
	if r.Module != "" {
		b = append(b, `"module":`...)
		b = appendJSONString(b, r.Module)
		b = append(b, ',')
	}
	b = append(b, `"namespace":`...)
	b = appendJSONString(b, r.Namespace)
	b = append(b, `,"serviceName":`...)
	b = appendJSONString(b, r.ServiceName)
	b = append(b, `,"groupName":`...)
	b = appendJSONString(b, r.GroupName)
	b = append(b, `,"serviceInfo":`...)
	b = r.Encoded.AppendJSON(b, r.ServiceInfo.LastRefTime)
	return append(b, '}'), true
}
