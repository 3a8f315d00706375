package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ferrysync/ferry/store"
)

// Error is what a service call refuses with; the API answers it as
// {"code","message","field"} with Status, the pages show Message next to
// Field. Codes are stable strings scripts may test.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// ChangedBy and ChangedAt name who made the version a stale write
	// missed (code "stale").
	ChangedBy string     `json:"changedBy,omitempty"`
	ChangedAt *time.Time `json:"changedAt,omitempty"`
	// Preview is the dry run of a refused app change (code "would_empty").
	Preview *Preview `json:"preview,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// Error codes.
const (
	CodeInvalid      = "invalid"      // 400, Field names the field
	CodeUnauth       = "unauthorized" // 401
	CodeForbidden    = "forbidden"    // 403
	CodeNotFound     = "not_found"    // 404
	CodeConflict     = "conflict"     // 409
	CodeStale        = "stale"        // 409: the row changed since it was read
	CodeWouldEmpty   = "would_empty"  // 409: the change leaves services empty; needs force
	CodeThrottled    = "throttled"    // 429
	CodeUnavailable  = "unavailable"  // 503: the store does not answer
	CodeInternal     = "internal"     // 500
	CodeCrossOrigin  = "cross_origin" // 403: a cross-origin write
	CodeMethod       = "method"       // 405
	CodeUnsupported  = "unsupported"  // 415
	CodeBodyTooLarge = "too_large"    // 413
	CodeRegistry     = "registry"     // 502: the registry refused or did not answer (its message verbatim)
)

func invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: fmt.Sprintf(format, args...)}
}

func unauthorized(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauth, Message: msg}
}

// asError maps any error of a service call onto an *Error: the store's
// sentinels by kind; an unknown error becomes 503 when the store does not
// answer a ping (an outage is never a stack trace), else 500 with a
// generic message (the caller logs the error itself).
func (s *Service) asError(ctx context.Context, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var stale *store.StaleError
	switch {
	case errors.As(err, &stale):
		at := stale.At
		return &Error{Status: http.StatusConflict, Code: CodeStale, Message: stale.Error(), ChangedBy: stale.By, ChangedAt: &at}
	case errors.Is(err, store.ErrNoSecretKey):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalid, Field: "password", Message: err.Error()}
	case errors.Is(err, store.ErrSecret):
		return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()}
	case errors.Is(err, store.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalid, Message: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error()}
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: err.Error()}
	case errors.Is(err, store.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the store does not answer: " + err.Error()}
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if perr := s.st.Ping(pctx); perr != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the store does not answer: " + perr.Error()}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error (logged on the worker)"}
}
