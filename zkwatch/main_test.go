package zkwatch

import (
	"testing"

	"go.uber.org/goleak"
)

// Every watcher a test starts is stopped: no goroutine (its loops, the
// ZooKeeper client's) outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
