package wire

import (
	"fmt"
	"strconv"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// EncodedReply is a unary answer that ServerCodec writes straight into
// gRPC's send buffer: the Payload of a QueryServiceResponse or a
// SubscribeServiceResponse whose ServiceInfo is pre-encoded (Encoded). The
// bytes are those of proto.Marshal of the Payload Codec.Encode would
// build; building that Payload would first copy the kilobytes of hosts
// into a body, then into the send buffer. Only ServerCodec marshals an
// EncodedReply.
type EncodedReply struct {
	hdr         *ResponseHeader
	typ         string
	enc         *ServiceInfoJSON
	lastRefTime int64
}

// EncodeReply is Encode for an answer that a RequestReplier returns: an
// EncodedReply for a QueryServiceResponse or SubscribeServiceResponse with
// Encoded set, a *Payload for anything else.
func (c *Codec) EncodeReply(m Message) (any, error) {
	var r *EncodedReply
	switch m := m.(type) {
	case *QueryServiceResponse:
		if m.Encoded != nil {
			r = &EncodedReply{hdr: &m.ResponseHeader, typ: m.TypeName(), enc: m.Encoded, lastRefTime: m.ServiceInfo.LastRefTime}
		}
	case *SubscribeServiceResponse:
		if m.Encoded != nil {
			r = &EncodedReply{hdr: &m.ResponseHeader, typ: m.TypeName(), enc: m.Encoded, lastRefTime: m.ServiceInfo.LastRefTime}
		}
	}
	if r == nil {
		return c.Encode(m)
	}
	r.hdr.Success = r.hdr.ResultCode == ResultSuccess
	if n := r.enc.Len() + len(r.hdr.Message) + len(r.hdr.RequestID) + 200; n > c.maxBody {
		return nil, fmt.Errorf("%w: %s body is about %d bytes (max %d)", ErrTooLarge, r.typ, n, c.maxBody)
	}
	return r, nil
}

// Payload field numbers (nacos.proto; google.protobuf.Any).
const (
	fieldPayloadMetadata = 2
	fieldPayloadBody     = 3
	fieldMetadataType    = 3
	fieldAnyValue        = 2
)

// marshal writes the reply's Payload into a buffer of exactly its size
// (pooled when large, as gRPC's proto codec does).
func (r *EncodedReply) marshal() mem.BufferSlice {
	var preBuf [192]byte
	pre := appendResponseHeader(preBuf[:0], r.hdr)
	pre = append(pre, `,"serviceInfo":`...)
	var refBuf [24]byte
	ref := strconv.AppendInt(refBuf[:0], r.lastRefTime, 10)
	e := r.enc
	typ := r.typ
	bodyLen := len(pre) + len(e.head) + len(`,"lastRefTime":`) + len(ref) + len(e.tail) + len(`}`)
	anyLen := protowire.SizeTag(fieldAnyValue) + protowire.SizeBytes(bodyLen)
	mdLen := protowire.SizeTag(fieldMetadataType) + protowire.SizeBytes(len(typ))
	size := protowire.SizeTag(fieldPayloadMetadata) + protowire.SizeBytes(mdLen) +
		protowire.SizeTag(fieldPayloadBody) + protowire.SizeBytes(anyLen)
	write := func(b []byte) []byte {
		b = protowire.AppendTag(b, fieldPayloadMetadata, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(mdLen))
		b = protowire.AppendTag(b, fieldMetadataType, protowire.BytesType)
		b = protowire.AppendString(b, typ)
		b = protowire.AppendTag(b, fieldPayloadBody, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(anyLen))
		b = protowire.AppendTag(b, fieldAnyValue, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(bodyLen))
		b = append(b, pre...)
		b = append(b, e.head...)
		b = append(b, `,"lastRefTime":`...)
		b = append(b, ref...)
		b = append(b, e.tail...)
		return append(b, '}')
	}
	if mem.IsBelowBufferPoolingThreshold(size) {
		return mem.BufferSlice{mem.SliceBuffer(write(make([]byte, 0, size)))}
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	*buf = write((*buf)[:0])
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}
}

// ServerCodec is gRPC's proto codec that also marshals EncodedReply, and
// unmarshals a usual Payload without protobuf reflection. A
// server whose RequestServer is a RequestReplier must use it:
// grpc.ForceServerCodecV2(wire.ServerCodec()).
func ServerCodec() encoding.CodecV2 { return serverCodec{inner: encoding.GetCodecV2(proto.Name)} }

type serverCodec struct{ inner encoding.CodecV2 }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*EncodedReply); ok {
		return r.marshal(), nil
	}
	return c.inner.Marshal(v)
}

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if p, ok := v.(*Payload); ok && len(data) == 1 && decodePayload(data[0].ReadOnlyData(), p) {
		return nil
	}
	return c.inner.Unmarshal(data, v)
}

func (c serverCodec) Name() string { return c.inner.Name() }
