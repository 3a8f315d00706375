package grpcapi

import (
	"net"

	"github.com/ferrysync/ferry/wire"
)

// Authorizer decides whether a decoded request may run (the registry's
// auth package implements it, after Nacos' RemoteRequestAuthFilter). It is
// called from request goroutines, concurrently, before the handler, with
// the request's Metadata.headers and the connection's remote IP. code 0
// lets the request through; any other code is the errorCode of the typed
// refusal (403 NO_RIGHT, 503 OVER_THRESHOLD) and msg its message.
type Authorizer interface {
	AuthorizeGRPC(req wire.Request, headers map[string]string, remoteIP string) (code int, msg string)
}

// SetAuthorizer installs the request check. Call before Start.
func (s *Server) SetAuthorizer(a Authorizer) {
	if s.started.Load() {
		panic("grpcapi: SetAuthorizer after Start")
	}
	s.authz = a
}

// refusedResponse is a refusal in the request's own response type, as
// Nacos' filters answer (getDefaultResponseInstance + setErrorInfo): the
// Go SDK reports it as a failed call and keeps its connection, where an
// ErrorResponse would make it retry and reconnect.
func refusedResponse(req wire.Request, code int, msg string) wire.Response {
	var r wire.Response
	switch q := req.(type) {
	case *wire.InstanceRequest:
		r = &wire.InstanceResponse{Type: q.Type}
	case *wire.PersistentInstanceRequest:
		r = &wire.InstanceResponse{Type: q.Type}
	case *wire.BatchInstanceRequest:
		r = &wire.BatchInstanceResponse{Type: q.Type}
	case *wire.ServiceQueryRequest:
		r = &wire.QueryServiceResponse{}
	case *wire.SubscribeServiceRequest:
		r = &wire.SubscribeServiceResponse{}
	case *wire.ServiceListRequest:
		r = &wire.ServiceListResponse{}
	case *wire.ConfigQueryRequest:
		r = &wire.ConfigQueryResponse{}
	case *wire.ConfigPublishRequest:
		r = &wire.ConfigPublishResponse{}
	case *wire.ConfigRemoveRequest:
		r = &wire.ConfigRemoveResponse{}
	case *wire.ConfigBatchListenRequest:
		r = &wire.ConfigChangeBatchListenResponse{ChangedConfigs: []wire.ConfigContext{}}
	case *wire.FerryBatchBeatRequest:
		r = &wire.FerryBatchBeatResponse{}
	case *wire.FerryBatchDeregisterRequest:
		r = &wire.FerryBatchDeregisterResponse{}
	case *wire.HealthCheckRequest:
		r = &wire.HealthCheckResponse{}
	default:
		// A type plugged in by another module: no typed answer is known.
		r = wire.NewErrorResponse(code, msg)
	}
	r.Result().SetError(code, msg)
	return r
}

// authorize runs the Authorizer (if any); a non-nil answer is the refusal.
func (s *Server) authorize(c *Conn, req wire.Request, headers map[string]string) wire.Response {
	if s.authz == nil {
		return nil
	}
	ip := c.RemoteAddr
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	code, msg := s.authz.AuthorizeGRPC(req, headers, ip)
	if code == 0 {
		return nil
	}
	resp := refusedResponse(req, code, msg)
	resp.Result().RequestID = req.Header().RequestID
	return resp
}
