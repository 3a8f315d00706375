package syncer

import (
	"reflect"
	"testing"
	"time"
)

// An unchanged instance keeps the registered copy: the plan must not swap
// in an equal new metadata map (a second copy per instance while the
// registry client still beats the first).
func TestReconcileKeepsRegisteredCopyWhenUnchanged(t *testing.T) {
	md := func() map[string]string { return map[string]string{"side": "provider", "timestamp": "1"} }
	inst := func(m map[string]string) Instance {
		return Instance{IP: "10.0.0.1", Port: 20880, Weight: 1, Enabled: true, Healthy: true, Ephemeral: true, Metadata: m}
	}
	reg, want := md(), md()
	for _, tc := range []struct {
		name     string
		regNode  string
		keepsReg bool
	}{
		{"built from the same node", "/n1", true},
		{"adopted from the registry", "", false},
		{"built from another node", "/n0", false},
	} {
		p := Reconcile(ReconcileInput{Now: time.Unix(100, 0), AllowRemovals: true,
			Desired:    map[string]Desired{"10.0.0.1:20880": {Instance: inst(want), Node: "/n1", Timestamp: 1}},
			Registered: map[string]Registered{"10.0.0.1:20880": {Instance: inst(reg), Node: tc.regNode, Timestamp: 1}}})
		if len(p.Actions) != 0 {
			t.Fatalf("%s: actions %+v for an unchanged instance", tc.name, p.Actions)
		}
		got := reflect.ValueOf(p.Keep["10.0.0.1:20880"].Instance.Metadata).Pointer()
		if keeps := got == reflect.ValueOf(reg).Pointer(); keeps != tc.keepsReg {
			t.Errorf("%s: plan keeps the registered copy = %v, want %v", tc.name, keeps, tc.keepsReg)
		}
		if n := p.Keep["10.0.0.1:20880"].Node; n != "/n1" {
			t.Errorf("%s: kept node %q, want /n1", tc.name, n)
		}
	}
}
