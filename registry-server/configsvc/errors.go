package configsvc

import "errors"

// Errors of the config service. Every validation error wraps
// ErrInvalidParam; the message names the bad field.
var (
	ErrInvalidParam = errors.New("configsvc: invalid parameter")
	ErrTooLarge     = errors.New("configsvc: content too large")
	ErrCASMismatch  = errors.New("configsvc: cas publish failed, the stored md5 has changed")
	ErrNotFound     = errors.New("configsvc: config data not exist")
	ErrStopped      = errors.New("configsvc: service stopped")
	ErrConfig       = errors.New("configsvc: invalid config")
)
