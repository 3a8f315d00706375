package wire

import "errors"

// Result codes (com.alibaba.nacos.api.remote.response.ResponseCode).
const (
	ResultSuccess = 200
	ResultFail    = 500
)

// Error codes (com.alibaba.nacos.api.exception.NacosException), carried in
// errorCode. ErrorResponse is reserved for the connection-level ones (300,
// 301, 302, 502): the Go SDK treats any ErrorResponse as a dead server.
const (
	CodeClientInvalidParam  = -400
	CodeClientDisconnect    = -401
	CodeClientOverThreshold = -503
	CodeInvalidParam        = 400
	CodeNoRight             = 403
	CodeNotFound            = 404
	CodeConflict            = 409
	CodeServerError         = 500
	CodeBadGateway          = 502
	CodeOverThreshold       = 503
	CodeInvalidServerStatus = 300
	CodeUnregister          = 301
	CodeNoHandler           = 302
	CodeResourceNotFound    = -404
)

// Sentinel errors of Decode and Encode.
var (
	ErrUnknownType = errors.New("wire: unknown message type")
	ErrMalformed   = errors.New("wire: malformed payload")
	ErrTooLarge    = errors.New("wire: payload too large")
)
