package wire

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
)

// Payload field numbers not in reply.go (nacos.proto; google.protobuf.Any).
const (
	fieldMetadataClientIP = 8
	fieldMetadataHeaders  = 7
	fieldAnyTypeURL       = 1
	fieldMapKey           = 1
	fieldMapValue         = 2
)

// decodePayload is a fast path for unmarshalling a Payload as clients send
// it: Metadata (type, clientIp, headers) and body (typeUrl, value), each
// field at most once, valid UTF-8 strings. It reads the wire format
// directly, without protobuf reflection (whose deep frames also grow every
// new request goroutine's stack). Anything else — unknown or repeated
// fields, other wire types, bad UTF-8, truncation — returns false and
// leaves p untouched for proto.Unmarshal. When it returns true, p is what
// proto.Unmarshal gives (FuzzDecodePayload checks it).
func decodePayload(b []byte, p *Payload) bool {
	var md *Metadata
	var body *anypb.Any
	ok := scanFields(b, func(num protowire.Number, v []byte) bool {
		switch {
		case num == fieldPayloadMetadata && md == nil:
			md = &Metadata{}
			return decodeMetadata(v, md)
		case num == fieldPayloadBody && body == nil:
			body = &anypb.Any{}
			return decodeAny(v, body)
		}
		return false
	})
	if !ok {
		return false
	}
	p.Metadata, p.Body = md, body
	return true
}

func decodeMetadata(b []byte, md *Metadata) bool {
	var seenType, seenIP bool
	return scanFields(b, func(num protowire.Number, v []byte) bool {
		switch {
		case num == fieldMetadataType && !seenType && utf8.Valid(v):
			seenType, md.Type = true, internType(v)
			return true
		case num == fieldMetadataClientIP && !seenIP && utf8.Valid(v):
			seenIP, md.ClientIp = true, string(v)
			return true
		case num == fieldMetadataHeaders:
			var k, val string
			var seenK, seenV bool
			if !scanFields(v, func(num protowire.Number, v []byte) bool {
				switch {
				case num == fieldMapKey && !seenK && utf8.Valid(v):
					seenK, k = true, string(v)
					return true
				case num == fieldMapValue && !seenV && utf8.Valid(v):
					seenV, val = true, string(v)
					return true
				}
				return false
			}) {
				return false
			}
			if md.Headers == nil {
				md.Headers = map[string]string{}
			}
			md.Headers[k] = val // a later entry for a key wins, as in proto
			return true
		}
		return false
	})
}

func decodeAny(b []byte, a *anypb.Any) bool {
	var seenURL, seenValue bool
	return scanFields(b, func(num protowire.Number, v []byte) bool {
		switch {
		case num == fieldAnyTypeURL && !seenURL && utf8.Valid(v):
			seenURL, a.TypeUrl = true, string(v)
			return true
		case num == fieldAnyValue && !seenValue:
			seenValue = true
			if len(v) > 0 {
				a.Value = append([]byte(nil), v...)
			}
			return true
		}
		return false
	})
}

// scanFields calls fn with each field of a message, all of which must be
// length-delimited; false on anything else or when fn says so.
func scanFields(b []byte, fn func(protowire.Number, []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if !fn(num, v) {
			return false
		}
	}
	return true
}

// internType returns the type name without allocating for known names.
func internType(v []byte) string {
	switch string(v) {
	case TypeServiceQueryRequest:
		return TypeServiceQueryRequest
	case TypeHealthCheckRequest:
		return TypeHealthCheckRequest
	case TypeInstanceRequest:
		return TypeInstanceRequest
	case TypeBatchInstanceRequest:
		return TypeBatchInstanceRequest
	case TypeSubscribeServiceRequest:
		return TypeSubscribeServiceRequest
	case TypeFerryBatchBeatRequest:
		return TypeFerryBatchBeatRequest
	}
	return string(v)
}
