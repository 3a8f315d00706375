package naming

import "errors"

// Sentinel errors. APIs map them to Nacos codes in one table each
// (all three are INVALID_PARAM 400 in Nacos terms).
var (
	// ErrInvalidParam: a missing or malformed ip, port, weight, name,
	// cluster or heart-beat setting.
	ErrInvalidParam = errors.New("naming: invalid param")
	// ErrEphemeralMismatch: an ephemeral instance into a persistent service,
	// or the reverse.
	ErrEphemeralMismatch = errors.New("naming: instance kind does not match the service")
	// ErrLimitExceeded: a batch, name or metadata over Config's limits.
	ErrLimitExceeded = errors.New("naming: limit exceeded")
)
