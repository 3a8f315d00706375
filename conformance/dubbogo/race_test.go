//go:build race

package dubbogo

import "testing"

// The end-to-end test is built without -race only: nacos-sdk-go v2.2.5
// (dubbo-go's own version: RpcClient.Request) and dubbo-getty race
// internally, which the detector reports against them, not Ferry.
func TestDubboGoSkippedUnderRace(t *testing.T) {
	t.Skip("dubbo-go v3.3.2 end-to-end test runs without -race (races inside nacos-sdk-go v2.2.5 and dubbo-getty)")
}
