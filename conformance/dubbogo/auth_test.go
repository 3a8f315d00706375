//go:build !race

package dubbogo

import (
	"os"
	"os/exec"
	"testing"

	"dubbo.apache.org/dubbo-go/v3/registry"

	registryserver "github.com/ferrysync/ferry/registry-server"
)

// TestDubboGoWithAuth: the same provider and consumer with username and
// password in their Nacos registry settings, against a node with auth on
// (admin nacos): registry, config-center mapping and metadata all pass
// the node's checks and the call succeeds. dubbo-go keeps the application
// in process-wide state, so this test runs in a child process of its own
// (the test binary again, only this test) and the parent checks its exit.
func TestDubboGoWithAuth(t *testing.T) {
	if os.Getenv("FERRY_DUBBOGO_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDubboGoWithAuth$", "-test.count=1")
		cmd.Env = append(os.Environ(), "FERRY_DUBBOGO_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	node := openNodeWith(t, func(c *registryserver.Config) {
		c.Auth.Enabled, c.Auth.BcryptCost, c.AdminPassword = true, 4, "dubbo-admin"
	})
	eventually(t, "the admin user", func() (bool, string) { return node.Raft().AuthState().HasGlobalAdmin(), "" })
	providerAndConsumer(t, node, "ferry-dubbogo-auth", registry.WithUsername("nacos"), registry.WithPassword("dubbo-admin"))
	if n := deniedCount(t, node); n != 0 {
		t.Fatalf("%v requests of the authenticated dubbo-go apps were refused", n)
	}
}

func deniedCount(t *testing.T, s *registryserver.Server) float64 {
	t.Helper()
	mfs, err := s.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "ferry_registry_auth_denied_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
