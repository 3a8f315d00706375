package wire

import (
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func payloadSeeds(t testing.TB) [][]byte {
	var out [][]byte
	add := func(p *Payload) {
		b, err := proto.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	for _, m := range []Message{&ServiceQueryRequest{NamingHeader: NamingHeader{Namespace: "public", ServiceName: "s", GroupName: "DEFAULT_GROUP"}},
		&HealthCheckRequest{}, &InstanceRequest{Type: RegisterInstance, Instance: Instance{IP: "10.0.0.1", Port: 1}}} {
		p, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		add(p)
		p.Metadata.ClientIp = "10.0.0.9"
		p.Metadata.Headers = map[string]string{"app": "x", "": "", "k": "é"}
		p.Body.TypeUrl = "type.googleapis.com/x"
		add(p)
	}
	add(&Payload{})
	add(&Payload{Metadata: &Metadata{}, Body: &anypb.Any{}})
	out = append(out, []byte{}, []byte{0x12, 0x00, 0x12, 0x00}, []byte{0x1a, 0x02, 0x12, 0x00}, []byte{0x12, 0x02, 0x1a, 0xff},
		[]byte{0x12, 0x04, 0x3a, 0x02, 0x08, 0x01}, []byte{0x12, 0x03, 0x1a, 0x01, 'a', 0x99})
	return out
}

// checkDecodePayload: when the fast path takes bytes, proto.Unmarshal
// accepts them too and gives an equal Payload.
func checkDecodePayload(t *testing.T, b []byte) bool {
	t.Helper()
	var fast, slow Payload
	if !decodePayload(b, &fast) {
		if fast.Metadata != nil || fast.Body != nil {
			t.Fatalf("%x: declined but left %v", b, &fast)
		}
		return false
	}
	if err := proto.Unmarshal(b, &slow); err != nil {
		t.Fatalf("fast path took %x, proto refuses it: %v", b, err)
	}
	if !proto.Equal(&fast, &slow) {
		t.Fatalf("%x:\nfast  %v\nproto %v", b, &fast, &slow)
	}
	return true
}

func TestDecodePayload(t *testing.T) {
	took := 0
	for _, b := range payloadSeeds(t) {
		if checkDecodePayload(t, b) {
			took++
		}
	}
	if took < 8 {
		t.Fatalf("fast path took only %d of the seeds", took)
	}
	// Through ServerCodec, declined bytes still decode (or fail) as proto does.
	var p Payload
	if err := ServerCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x12, 0x03, 0x1a, 0x01, 'a', 0x99})}, &p); err == nil {
		t.Fatal("truncated payload decoded")
	}
	if err := ServerCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x12, 0x02, 0x1a, 0x00})}, &p); err != nil || p.GetMetadata() == nil {
		t.Fatalf("%v %v", err, &p)
	}
}

func FuzzDecodePayload(f *testing.F) {
	for _, b := range payloadSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodePayload(t, b) })
}
