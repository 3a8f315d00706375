package udppush

import "testing"

// Against UdpPushService.canEnablePush with SwitchDomain's defaults
// (Nacos 2.5.1) and ClientInfo's prefixes.
func TestCanPush(t *testing.T) {
	for _, tc := range []struct {
		agent string
		want  bool
	}{
		{"Nacos-Go-Client:v1.1.4", true},
		{"Nacos-Go-Client:v0.1.0", true},
		{"Nacos-Go-Client:v0.0.9", false},
		{"Nacos-Go-Client:v2.3.5", true},
		{"Nacos-Java-Client:v1.4.1", true},
		{"Nacos-Java-Client:v1.4.1-SNAPSHOT", true},
		{"Nacos-Java-Client:v0.1.0-SNAPSHOT", false}, // a snapshot sorts below its release
		{"Nacos-Java-Client", false},                 // no ":v": unknown version
		{"Nacos-DNS:v0.4.3", true},
		{"Nacos-DNS:v0.4.2", false},
		{"Nacos-C-Client:v1.0.12", true},
		{"Nacos-C-Client:v1.0.11", false},
		{"vip-client4cpp:v1.0.12", true},
		{"Nacos-CSharp-Client:v0.9.0", true},
		{"Nacos-CSharp-Client:v0.8.9", false},
		{"Nacos-Php-Client:v9.9.9", false},
		{"Nacos-SDK-Java:v2.0.0", false},
		{"Nacos-Server:v2.5.1", false},
		{"unit-nginx:v1.0.0", false},
		{"curl/8.5.0", false},
		{"", false},
	} {
		if got := CanPush(tc.agent); got != tc.want {
			t.Errorf("CanPush(%q) = %v, want %v", tc.agent, got, tc.want)
		}
	}
}
