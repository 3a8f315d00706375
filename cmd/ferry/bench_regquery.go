package main

import (
	"bytes"
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ferrysync/ferry/wire"
)

// queryReply is a Request answer (a Payload) decoded by replyCodec into
// memory reused from call to call: the query workload checks every answer
// without a fresh copy of its kilobytes of hosts each time, since the
// loopback clients share the two cores with the server.
type queryReply struct {
	typ  string
	body []byte
}

// replyCodec is gRPC's proto codec, plus decoding a Payload into a
// queryReply.
type replyCodec struct{ inner encoding.CodecV2 }

func newReplyCodec() replyCodec { return replyCodec{inner: encoding.GetCodecV2(proto.Name)} }

func (c replyCodec) Marshal(v any) (mem.BufferSlice, error) { return c.inner.Marshal(v) }
func (c replyCodec) Name() string                           { return c.inner.Name() }

func (c replyCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*queryReply)
	if !ok {
		return c.inner.Unmarshal(data, v)
	}
	if len(data) == 1 {
		return r.decode(data[0].ReadOnlyData())
	}
	return r.decode(data.Materialize())
}

// Payload field numbers (nacos.proto; google.protobuf.Any).
const (
	pbPayloadMetadata = 2
	pbPayloadBody     = 3
	pbMetadataType    = 3
	pbAnyValue        = 2
)

// decode parses a Payload: its type and its body; other fields are skipped.
func (r *queryReply) decode(b []byte) error {
	r.typ, r.body = "", r.body[:0]
	return eachField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case pbPayloadMetadata:
			return eachField(v, func(num protowire.Number, v []byte) error {
				if num == pbMetadataType {
					if string(v) == wire.TypeQueryServiceResponse {
						r.typ = wire.TypeQueryServiceResponse
					} else {
						r.typ = string(v)
					}
				}
				return nil
			})
		case pbPayloadBody:
			return eachField(v, func(num protowire.Number, v []byte) error {
				if num == pbAnyValue {
					r.body = append(r.body[:0], v...)
				}
				return nil
			})
		}
		return nil
	})
}

// eachField calls fn with each length-delimited field of a message (others
// are skipped).
func eachField(b []byte, fn func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}

// queryCheck sends an encoded ServiceQueryRequest and checks that the
// answer is a QueryServiceResponse that starts with head (success, the
// service) and is size bytes long, like the answer decoded in full before
// (only lastRefTime varies, always 13 digits). reply is reused.
func (c *benchConn) queryCheck(ctx context.Context, p *wire.Payload, head []byte, size int, reply *queryReply, codec grpc.CallOption) error {
	if err := c.cc.Invoke(ctx, wire.RequestMethod, p, reply, codec); err != nil {
		return err
	}
	if reply.typ != wire.TypeQueryServiceResponse || len(reply.body) != size || !bytes.HasPrefix(reply.body, head) {
		return fmt.Errorf("unexpected answer %s %.300s", reply.typ, reply.body)
	}
	return nil
}
