package wire

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/types/known/anypb"
)

// Type names (Metadata.type).
const (
	TypeServerCheckRequest        = "ServerCheckRequest"
	TypeServerCheckResponse       = "ServerCheckResponse"
	TypeConnectionSetupRequest    = "ConnectionSetupRequest"
	TypeSetupAckRequest           = "SetupAckRequest"
	TypeSetupAckResponse          = "SetupAckResponse"
	TypeHealthCheckRequest        = "HealthCheckRequest"
	TypeHealthCheckResponse       = "HealthCheckResponse"
	TypeClientDetectionRequest    = "ClientDetectionRequest"
	TypeClientDetectionResponse   = "ClientDetectionResponse"
	TypeConnectResetRequest       = "ConnectResetRequest"
	TypeConnectResetResponse      = "ConnectResetResponse"
	TypeErrorResponse             = "ErrorResponse"
	TypeInstanceRequest           = "InstanceRequest"
	TypeInstanceResponse          = "InstanceResponse"
	TypeBatchInstanceRequest      = "BatchInstanceRequest"
	TypeBatchInstanceResponse     = "BatchInstanceResponse"
	TypePersistentInstanceRequest = "PersistentInstanceRequest"
	TypeServiceQueryRequest       = "ServiceQueryRequest"
	TypeQueryServiceResponse      = "QueryServiceResponse"
	TypeServiceListRequest        = "ServiceListRequest"
	TypeServiceListResponse       = "ServiceListResponse"
	TypeSubscribeServiceRequest   = "SubscribeServiceRequest"
	TypeSubscribeServiceResponse  = "SubscribeServiceResponse"
	TypeNotifySubscriberRequest   = "NotifySubscriberRequest"
	TypeNotifySubscriberResponse  = "NotifySubscriberResponse"
	TypeFerryBatchBeatRequest     = "FerryBatchBeatRequest"
	TypeFerryBatchBeatResponse    = "FerryBatchBeatResponse"
)

func (*ServerCheckRequest) TypeName() string        { return TypeServerCheckRequest }
func (*ServerCheckResponse) TypeName() string       { return TypeServerCheckResponse }
func (*ConnectionSetupRequest) TypeName() string    { return TypeConnectionSetupRequest }
func (*SetupAckRequest) TypeName() string           { return TypeSetupAckRequest }
func (*SetupAckResponse) TypeName() string          { return TypeSetupAckResponse }
func (*HealthCheckRequest) TypeName() string        { return TypeHealthCheckRequest }
func (*HealthCheckResponse) TypeName() string       { return TypeHealthCheckResponse }
func (*ClientDetectionRequest) TypeName() string    { return TypeClientDetectionRequest }
func (*ClientDetectionResponse) TypeName() string   { return TypeClientDetectionResponse }
func (*ConnectResetRequest) TypeName() string       { return TypeConnectResetRequest }
func (*ConnectResetResponse) TypeName() string      { return TypeConnectResetResponse }
func (*ErrorResponse) TypeName() string             { return TypeErrorResponse }
func (*InstanceRequest) TypeName() string           { return TypeInstanceRequest }
func (*InstanceResponse) TypeName() string          { return TypeInstanceResponse }
func (*BatchInstanceRequest) TypeName() string      { return TypeBatchInstanceRequest }
func (*BatchInstanceResponse) TypeName() string     { return TypeBatchInstanceResponse }
func (*PersistentInstanceRequest) TypeName() string { return TypePersistentInstanceRequest }
func (*ServiceQueryRequest) TypeName() string       { return TypeServiceQueryRequest }
func (*QueryServiceResponse) TypeName() string      { return TypeQueryServiceResponse }
func (*ServiceListRequest) TypeName() string        { return TypeServiceListRequest }
func (*ServiceListResponse) TypeName() string       { return TypeServiceListResponse }
func (*SubscribeServiceRequest) TypeName() string   { return TypeSubscribeServiceRequest }
func (*SubscribeServiceResponse) TypeName() string  { return TypeSubscribeServiceResponse }
func (*NotifySubscriberRequest) TypeName() string   { return TypeNotifySubscriberRequest }
func (*NotifySubscriberResponse) TypeName() string  { return TypeNotifySubscriberResponse }
func (*FerryBatchBeatRequest) TypeName() string     { return TypeFerryBatchBeatRequest }
func (*FerryBatchBeatResponse) TypeName() string    { return TypeFerryBatchBeatResponse }

// Ferry's bulk deregister (merged-beat extension, same capability flag).
const (
	TypeFerryBatchDeregisterRequest  = "FerryBatchDeregisterRequest"
	TypeFerryBatchDeregisterResponse = "FerryBatchDeregisterResponse"
)

func (*FerryBatchDeregisterRequest) TypeName() string  { return TypeFerryBatchDeregisterRequest }
func (*FerryBatchDeregisterResponse) TypeName() string { return TypeFerryBatchDeregisterResponse }

// New returns a new zero message of a known type name, or false. It is the
// type-name registry of the naming, internal and config modules; other
// modules add theirs through Codec.Register.
func New(typeName string) (Message, bool) {
	switch typeName {
	case TypeServerCheckRequest:
		return &ServerCheckRequest{}, true
	case TypeServerCheckResponse:
		return &ServerCheckResponse{}, true
	case TypeConnectionSetupRequest:
		return &ConnectionSetupRequest{}, true
	case TypeSetupAckRequest:
		return &SetupAckRequest{}, true
	case TypeSetupAckResponse:
		return &SetupAckResponse{}, true
	case TypeHealthCheckRequest:
		return &HealthCheckRequest{}, true
	case TypeHealthCheckResponse:
		return &HealthCheckResponse{}, true
	case TypeClientDetectionRequest:
		return &ClientDetectionRequest{}, true
	case TypeClientDetectionResponse:
		return &ClientDetectionResponse{}, true
	case TypeConnectResetRequest:
		return &ConnectResetRequest{}, true
	case TypeConnectResetResponse:
		return &ConnectResetResponse{}, true
	case TypeErrorResponse:
		return &ErrorResponse{}, true
	case TypeInstanceRequest:
		return &InstanceRequest{}, true
	case TypeInstanceResponse:
		return &InstanceResponse{}, true
	case TypeBatchInstanceRequest:
		return &BatchInstanceRequest{}, true
	case TypeBatchInstanceResponse:
		return &BatchInstanceResponse{}, true
	case TypePersistentInstanceRequest:
		return &PersistentInstanceRequest{}, true
	case TypeServiceQueryRequest:
		return &ServiceQueryRequest{}, true
	case TypeQueryServiceResponse:
		return &QueryServiceResponse{}, true
	case TypeServiceListRequest:
		return &ServiceListRequest{}, true
	case TypeServiceListResponse:
		return &ServiceListResponse{}, true
	case TypeSubscribeServiceRequest:
		return &SubscribeServiceRequest{}, true
	case TypeSubscribeServiceResponse:
		return &SubscribeServiceResponse{}, true
	case TypeNotifySubscriberRequest:
		return &NotifySubscriberRequest{}, true
	case TypeNotifySubscriberResponse:
		return &NotifySubscriberResponse{}, true
	case TypeFerryBatchBeatRequest:
		return &FerryBatchBeatRequest{}, true
	case TypeFerryBatchBeatResponse:
		return &FerryBatchBeatResponse{}, true
	case TypeFerryBatchDeregisterRequest:
		return &FerryBatchDeregisterRequest{}, true
	case TypeFerryBatchDeregisterResponse:
		return &FerryBatchDeregisterResponse{}, true
	}
	return newConfig(typeName)
}

// moduleOf is the "module" a request of this type carries.
func moduleOf(m Message) string {
	switch m.(type) {
	case *ServerCheckRequest, *ConnectionSetupRequest, *SetupAckRequest, *HealthCheckRequest,
		*ClientDetectionRequest, *ConnectResetRequest:
		return ModuleInternal
	case configMessage:
		return ModuleConfig
	}
	return ModuleNaming
}

// DefaultMaxBodyBytes bounds a body's JSON: 10 MiB, Nacos' max inbound
// gRPC message size.
const DefaultMaxBodyBytes = 10 << 20

// Codec encodes and decodes payloads. The zero value is not usable: use
// NewCodec. A Codec is safe for concurrent use once built (Register only
// before use).
type Codec struct {
	maxBody int
	extra   map[string]func() Message
}

// NewCodec returns a codec refusing bodies larger than maxBody bytes
// (DefaultMaxBodyBytes when ≤ 0).
func NewCodec(maxBody int) *Codec {
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	return &Codec{maxBody: maxBody, extra: map[string]func() Message{}}
}

// Register adds a type of another module (e.g. config). Call it before the
// codec is shared.
func (c *Codec) Register(typeName string, factory func() Message) {
	c.extra[typeName] = factory
}

// Known reports whether typeName decodes.
func (c *Codec) Known(typeName string) bool {
	if _, ok := New(typeName); ok {
		return true
	}
	_, ok := c.extra[typeName]
	return ok
}

// Encode marshals m into a payload: a request's Headers go to
// Metadata.headers and its module is filled in; a response's success is made
// consistent with its resultCode.
func (c *Codec) Encode(m Message) (*Payload, error) {
	md := &Metadata{Type: m.TypeName()}
	if r, ok := m.(Request); ok {
		h := r.Header()
		if h.Module == "" {
			h.Module = moduleOf(m)
		}
		if len(h.Headers) > 0 {
			md.Headers = h.Headers
		}
	}
	if r, ok := m.(Response); ok {
		h := r.Result()
		h.Success = h.ResultCode == ResultSuccess
	}
	var b []byte
	if a, ok := m.(bodyAppender); ok {
		b, ok = a.appendBody()
		if !ok {
			b = nil
		}
	}
	if b == nil {
		var err error
		if b, err = json.Marshal(m); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.TypeName(), err)
		}
	}
	if len(b) > c.maxBody {
		return nil, fmt.Errorf("%w: %s body is %d bytes (max %d)", ErrTooLarge, m.TypeName(), len(b), c.maxBody)
	}
	return &Payload{Metadata: md, Body: &anypb.Any{Value: b}}, nil
}

// Decode unmarshals a payload into its message. Unknown JSON fields are
// ignored; Metadata.headers are merged into a request's Headers. Errors wrap
// ErrUnknownType, ErrMalformed or ErrTooLarge.
func (c *Codec) Decode(p *Payload) (Message, error) {
	typ := p.GetMetadata().GetType()
	m, ok := New(typ)
	if !ok {
		f, ok2 := c.extra[typ]
		if !ok2 {
			return nil, fmt.Errorf("%w: %q", ErrUnknownType, typ)
		}
		m = f()
	}
	body := p.GetBody().GetValue()
	if len(body) > c.maxBody {
		return nil, fmt.Errorf("%w: %s body is %d bytes (max %d)", ErrTooLarge, typ, len(body), c.maxBody)
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if f, ok := m.(fastDecoder); !ok || !f.decodeFast(body) {
		if err := json.Unmarshal(body, m); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, typ, err)
		}
	}
	if r, ok := m.(Request); ok {
		if hs := p.GetMetadata().GetHeaders(); len(hs) > 0 {
			h := r.Header()
			if h.Headers == nil {
				// The request takes the payload's map (a decoded payload is
				// not used again): no copy on every authenticated request.
				h.Headers = hs
			} else {
				for k, v := range hs {
					h.Headers[k] = v
				}
			}
		}
	}
	return m, nil
}

// Encode marshals m with DefaultMaxBodyBytes.
func Encode(m Message) (*Payload, error) { return NewCodec(0).Encode(m) }

// Decode unmarshals p with DefaultMaxBodyBytes.
func Decode(p *Payload) (Message, error) { return NewCodec(0).Decode(p) }
