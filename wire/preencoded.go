package wire

import (
	"encoding/json"
	"strconv"
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
// are exactly those json.Marshal gives for si (with its lastRefTime).
func EncodeServiceInfo(si *ServiceInfo) (*ServiceInfoJSON, error) {
	hosts, err := json.Marshal(si.Hosts)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 0, len(hosts)+len(si.Name)+len(si.GroupName)+len(si.Clusters)+80)
	head = append(head, `{"name":`...)
	head = appendJSONString(head, si.Name)
	head = append(head, `,"groupName":`...)
	head = appendJSONString(head, si.GroupName)
	head = append(head, `,"clusters":`...)
	head = appendJSONString(head, si.Clusters)
	head = append(head, `,"cacheMillis":`...)
	head = strconv.AppendInt(head, si.CacheMillis, 10)
	head = append(head, `,"hosts":`...)
	head = append(head, hosts...)
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
	if r.Encoded == nil {
		return nil, false
	}
	b := make([]byte, 0, r.Encoded.Len()+len(r.Message)+len(r.RequestID)+96)
	b = appendResponseHeader(b, &r.ResponseHeader)
	b = append(b, `,"serviceInfo":`...)
	b = r.Encoded.AppendJSON(b, r.ServiceInfo.LastRefTime)
	return append(b, '}'), true
}
