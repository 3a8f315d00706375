package wire

import (
	"context"

	"google.golang.org/grpc"
)

// The two Nacos gRPC services. Nacos' .proto declares no package, so the full
// method names are unqualified: /Request/request and
// /BiRequestStream/requestBiStream. They are written by hand (not generated)
// so that the proto messages can live in package ferry.wire without changing
// the service names.
const (
	RequestServiceName         = "Request"
	RequestMethod              = "/Request/request"
	BiRequestStreamServiceName = "BiRequestStream"
	BiRequestStreamMethod      = "/BiRequestStream/requestBiStream"
)

// RequestServer is the server side of the unary Request service.
type RequestServer interface {
	Request(ctx context.Context, p *Payload) (*Payload, error)
}

// BiRequestStreamServer is the server side of the bidirectional stream.
type BiRequestStreamServer interface {
	RequestBiStream(stream BiRequestStream_RequestBiStreamServer) error
}

// BiRequestStream_RequestBiStreamServer is the server's view of one bi-stream.
//
//revive:disable-next-line:var-naming (grpc naming convention)
type BiRequestStream_RequestBiStreamServer interface {
	Send(*Payload) error
	Recv() (*Payload, error)
	grpc.ServerStream
}

// BiRequestStream_RequestBiStreamClient is the client's view of one bi-stream.
type BiRequestStream_RequestBiStreamClient interface {
	Send(*Payload) error
	Recv() (*Payload, error)
	grpc.ClientStream
}

// RequestReplier is a RequestServer that may answer with an EncodedReply
// instead of a *Payload (only when no interceptor is installed). Its
// grpc.Server must use ServerCodec.
type RequestReplier interface {
	RequestReply(ctx context.Context, p *Payload) (any, error)
}

func requestHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(Payload)
	if err := dec(in); err != nil {
		return nil, err
	}
	if rr, ok := srv.(RequestReplier); ok && interceptor == nil {
		return rr.RequestReply(ctx, in)
	}
	if interceptor == nil {
		return srv.(RequestServer).Request(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: RequestMethod}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return srv.(RequestServer).Request(ctx, req.(*Payload))
	})
}

type biStreamServer struct{ grpc.ServerStream }

func (s *biStreamServer) Send(p *Payload) error { return s.ServerStream.SendMsg(p) }
func (s *biStreamServer) Recv() (*Payload, error) {
	p := new(Payload)
	if err := s.ServerStream.RecvMsg(p); err != nil {
		return nil, err
	}
	return p, nil
}

func biStreamHandler(srv any, stream grpc.ServerStream) error {
	return srv.(BiRequestStreamServer).RequestBiStream(&biStreamServer{stream})
}

// RequestServiceDesc describes the unary Request service for grpc.Server.RegisterService.
var RequestServiceDesc = grpc.ServiceDesc{
	ServiceName: RequestServiceName,
	HandlerType: (*RequestServer)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "request", Handler: requestHandler}},
	Metadata:    "nacos_grpc_service.proto",
}

// BiRequestStreamServiceDesc describes the BiRequestStream service.
var BiRequestStreamServiceDesc = grpc.ServiceDesc{
	ServiceName: BiRequestStreamServiceName,
	HandlerType: (*BiRequestStreamServer)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "requestBiStream",
		Handler:       biStreamHandler,
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "nacos_grpc_service.proto",
}

// RegisterRequestServer registers srv's unary Request service on s.
func RegisterRequestServer(s grpc.ServiceRegistrar, srv RequestServer) {
	s.RegisterService(&RequestServiceDesc, srv)
}

// RegisterBiRequestStreamServer registers srv's bi-stream service on s.
func RegisterBiRequestStreamServer(s grpc.ServiceRegistrar, srv BiRequestStreamServer) {
	s.RegisterService(&BiRequestStreamServiceDesc, srv)
}

// RequestClient calls the unary Request service.
type RequestClient interface {
	Request(ctx context.Context, in *Payload, opts ...grpc.CallOption) (*Payload, error)
}

type requestClient struct{ cc grpc.ClientConnInterface }

// NewRequestClient returns a client of the unary Request service on cc.
func NewRequestClient(cc grpc.ClientConnInterface) RequestClient { return &requestClient{cc} }

func (c *requestClient) Request(ctx context.Context, in *Payload, opts ...grpc.CallOption) (*Payload, error) {
	out := new(Payload)
	if err := c.cc.Invoke(ctx, RequestMethod, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

// BiRequestStreamClient opens bi-streams.
type BiRequestStreamClient interface {
	RequestBiStream(ctx context.Context, opts ...grpc.CallOption) (BiRequestStream_RequestBiStreamClient, error)
}

type biRequestStreamClient struct{ cc grpc.ClientConnInterface }

// NewBiRequestStreamClient returns a client of the BiRequestStream service on cc.
func NewBiRequestStreamClient(cc grpc.ClientConnInterface) BiRequestStreamClient {
	return &biRequestStreamClient{cc}
}

func (c *biRequestStreamClient) RequestBiStream(ctx context.Context, opts ...grpc.CallOption) (BiRequestStream_RequestBiStreamClient, error) {
	s, err := c.cc.NewStream(ctx, &BiRequestStreamServiceDesc.Streams[0], BiRequestStreamMethod, opts...)
	if err != nil {
		return nil, err
	}
	return &biStreamClient{s}, nil
}

type biStreamClient struct{ grpc.ClientStream }

func (s *biStreamClient) Send(p *Payload) error { return s.ClientStream.SendMsg(p) }
func (s *biStreamClient) Recv() (*Payload, error) {
	p := new(Payload)
	if err := s.ClientStream.RecvMsg(p); err != nil {
		return nil, err
	}
	return p, nil
}
