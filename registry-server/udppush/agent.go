package udppush

import "strings"

// CanPush reports whether Nacos pushes to a client with this User-Agent
// (or Client-Version) header: UdpPushService.canEnablePush with the
// SwitchDomain defaults of Nacos 2.5.1. A Java client ("Nacos-Java-Client:v…")
// or Go client ("Nacos-Go-Client:v…") from version 0.1.0, the DNS-F client
// from 0.4.3, the C client ("Nacos-C-Client", "vip-client4cpp…") from
// 1.0.12, the C# client from 0.9.0; nothing else (curl, browsers, the PHP
// and Nginx clients, other servers).
func CanPush(agent string) bool {
	typ := clientType(agent)
	min, ok := pushVersions[typ]
	if !ok {
		return false
	}
	i := strings.Index(agent, ":v")
	if i < 0 {
		return false // Version.unknownVersion() is 0.0.0: below every minimum
	}
	return parseVersion(agent[i+2:]).compare(min) >= 0
}

// Nacos' ClientInfo.ClientType prefixes, in the enum's order (the first
// prefix that matches wins).
var clientTypes = []struct{ typ, prefix string }{
	{"go", "Nacos-Go-Client"},
	{"java", "Nacos-Java-Client"},
	{"c", "Nacos-C-Client"},
	{"csharp", "Nacos-CSharp-Client"},
	{"php", "Nacos-Php-Client"},
	{"dns", "Nacos-DNS"},
	{"tengine", "unit-nginx"},
	{"java-sdk", "Nacos-SDK-Java"},
	{"server", "Nacos-Server"},
}

// pushVersions: SwitchDomain's pushGoVersion, pushJavaVersion,
// pushPythonVersion (the DNS-F client), pushCVersion, pushCSharpVersion.
var pushVersions = map[string]version{
	"go":     {0, 1, 0, false},
	"java":   {0, 1, 0, false},
	"dns":    {0, 4, 3, false},
	"c":      {1, 0, 12, false},
	"csharp": {0, 9, 0, false},
}

func clientType(agent string) string {
	if strings.HasPrefix(agent, "vip-client4cpp") {
		return "c"
	}
	for _, t := range clientTypes {
		if strings.HasPrefix(agent, t.prefix) {
			return t.typ
		}
	}
	return ""
}

// version is Jackson's Version as VersionUtil.parseVersion reads it.
type version struct {
	major, minor, patch int
	snapshot            bool // a fourth part ("1.4.1-SNAPSHOT")
}

// parseVersion splits at any of "-_./;:" and reads the leading digits of
// the first three parts (Jackson VersionUtil.parseVersion).
func parseVersion(s string) version {
	s = strings.TrimSpace(s)
	parts := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune("-_./;:", r) })
	// FieldsFunc drops empty parts; Java's split keeps inner ones. Inner
	// empty parts only occur in malformed versions, which read as 0 either way
	// in the first three positions.
	var v version
	num := func(p string) int {
		n := 0
		for i := 0; i < len(p) && p[i] >= '0' && p[i] <= '9'; i++ {
			n = n*10 + int(p[i]-'0')
			if n > 1<<30 {
				break
			}
		}
		return n
	}
	if len(parts) > 0 {
		v.major = num(parts[0])
	}
	if len(parts) > 1 {
		v.minor = num(parts[1])
	}
	if len(parts) > 2 {
		v.patch = num(parts[2])
	}
	v.snapshot = len(parts) > 3
	return v
}

func (v version) compare(o version) int {
	for _, d := range []int{v.major - o.major, v.minor - o.minor, v.patch - o.patch} {
		if d != 0 {
			return d
		}
	}
	switch {
	case v.snapshot == o.snapshot:
		return 0
	case v.snapshot:
		return -1
	}
	return 1
}
