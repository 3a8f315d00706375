package main

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ferrysync/ferry/wire"
)

func TestReplyCodecDecodesPayload(t *testing.T) {
	c := newReplyCodec()
	r := &queryReply{body: make([]byte, 0, 4)}
	for _, p := range []*wire.Payload{
		{Metadata: &wire.Metadata{Type: wire.TypeQueryServiceResponse, ClientIp: "10.0.0.1", Headers: map[string]string{"a": "b"}},
			Body: &anypb.Any{TypeUrl: "x", Value: bytes.Repeat([]byte(`{"resultCode":200}`), 100)}},
		{Metadata: &wire.Metadata{Type: "ErrorResponse"}, Body: &anypb.Any{Value: []byte(`{}`)}},
		{},
	} {
		b, err := proto.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		// Split in two buffers, as gRPC may hand them over.
		data := mem.BufferSlice{mem.SliceBuffer(b[:len(b)/2]), mem.SliceBuffer(b[len(b)/2:])}
		if err := c.Unmarshal(data, r); err != nil {
			t.Fatal(err)
		}
		if r.typ != p.GetMetadata().GetType() || !bytes.Equal(r.body, p.GetBody().GetValue()) {
			t.Fatalf("decoded %q %q, want %q %q", r.typ, r.body, p.GetMetadata().GetType(), p.GetBody().GetValue())
		}
		var back wire.Payload
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &back); err != nil || !proto.Equal(&back, p) {
			t.Fatalf("proto path: %v %v", err, &back)
		}
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x1a, 0x05, 0x01})}, r); err == nil {
		t.Fatal("truncated payload decoded")
	}
}
