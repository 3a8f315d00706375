package worker

import (
	"testing"

	"go.uber.org/goleak"
)

// Every worker a test starts is stopped: no goroutine (engines, watchers,
// registry clients, the store's) outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
