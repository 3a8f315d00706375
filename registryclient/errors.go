package registryclient

import (
	"errors"
	"fmt"

	"github.com/ferrysync/ferry/wire"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrClosed: the client was closed (or never started).
	ErrClosed = errors.New("registryclient: client closed")
	// ErrNoServer: no server in the list could be reached.
	ErrNoServer = errors.New("registryclient: no server reachable")
	// ErrConnect: connecting to one server failed (wrapped with its address).
	ErrConnect = errors.New("registryclient: connect failed")
	// ErrBadAddress: a server address does not parse.
	ErrBadAddress = errors.New("registryclient: bad server address")
	// ErrProtocol: the server answered something that is not the expected
	// Nacos 2.x message (wrong type, undecodable, too large).
	ErrProtocol = errors.New("registryclient: protocol error")
	// ErrNoBatchBeat: the server does not offer Ferry's merged beats (a real
	// Nacos): fall back to BatchRegister per service.
	ErrNoBatchBeat = errors.New("registryclient: server does not support batch beats")
	// ErrInvalidConfig: Config.Validate failed.
	ErrInvalidConfig = errors.New("registryclient: invalid config")
	// ErrInvalidInput: a call's argument is unusable (empty service name...).
	ErrInvalidInput = errors.New("registryclient: invalid input")
	// ErrNotCached: no cached or failover data for the service.
	ErrNotCached = errors.New("registryclient: service not cached")

	// Business errors a server answers with a typed failure response; the
	// *ServerError returned wraps one of these (ErrServerFailure for codes
	// not listed).
	ErrInvalidParam   = errors.New("registryclient: invalid parameter")
	ErrNoRight        = errors.New("registryclient: no right")
	ErrNotFound       = errors.New("registryclient: not found")
	ErrConflict       = errors.New("registryclient: conflict")
	ErrOverThreshold  = errors.New("registryclient: server over threshold")
	ErrServerFailure  = errors.New("registryclient: server failure")
	errConnectionLost = errors.New("registryclient: connection-level error")
)

// ServerError is a failed answer of a server: the request type, the server
// address, Nacos' errorCode and message. It unwraps to one of the business
// sentinels above.
type ServerError struct {
	Type    string
	Addr    string
	Code    int
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("%v: %s at %s: code %d: %s", e.Unwrap(), e.Type, e.Addr, e.Code, e.Message)
}

// Unwrap maps the code onto a sentinel.
func (e *ServerError) Unwrap() error {
	switch e.Code {
	case wire.CodeInvalidParam, wire.CodeClientInvalidParam:
		return ErrInvalidParam
	case wire.CodeNoRight:
		return ErrNoRight
	case wire.CodeNotFound, wire.CodeResourceNotFound:
		return ErrNotFound
	case wire.CodeConflict:
		return ErrConflict
	case wire.CodeOverThreshold, wire.CodeClientOverThreshold:
		return ErrOverThreshold
	}
	return ErrServerFailure
}

// connectionLevel reports whether an ErrorResponse code means "this
// connection or server is unusable, go elsewhere" (Nacos: 300 starting, 301
// unregistered connection, 302 no handler is not: the request type is
// unknown; 502 bad gateway).
func connectionLevel(code int) bool {
	return code == wire.CodeInvalidServerStatus || code == wire.CodeUnregister || code == wire.CodeBadGateway
}
