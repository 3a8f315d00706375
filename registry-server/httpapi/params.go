package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// Parameter parsing and validation, as Nacos does it (WebUtils.required,
// HttpRequestInstanceBuilder, UtilsAndCommons.parseMetadata, NamingUtils,
// the default ParamChecker). Pure functions over url.Values: fuzzed.

// Nacos v2 detail error codes (api/model/v2/ErrorCode.java).
const (
	codeSuccess       = 0
	codeParamMissing  = 10000
	codeParamValidate = 20002
	codeNotFound      = 20004
	codeConflict      = 20005
	codeServiceName   = 21000
	codeWeight        = 21001
	codeInstanceMeta  = 21002
	codeInstanceError = 21004
	codeServiceMeta   = 21005
	codeServerError   = 30000
)

var codeText = map[int]string{
	codeSuccess:       "success",
	codeParamMissing:  "parameter missing",
	codeParamValidate: "parameter validate error",
	codeNotFound:      "resource not found",
	codeConflict:      "resource conflict",
	codeServiceName:   "service name error",
	codeWeight:        "weight error",
	codeInstanceMeta:  "instance metadata error",
	codeInstanceError: "instance error",
	codeServiceMeta:   "service metadata error",
	codeServerError:   "server error",
}

// apiError is a failed request: the HTTP status, the v2 detail code and a
// message. v1 answers "caused: msg;" as text (Nacos' exception handler) or,
// for parameter-check failures (check=true), the bare message; v2 answers
// the {code, message, data} envelope.
type apiError struct {
	status int
	code   int
	msg    string
	check  bool
}

func (e *apiError) Error() string { return e.msg }

func errMissing(name string) *apiError {
	return &apiError{status: 400, code: codeParamMissing, msg: fmt.Sprintf("Param '%s' is required.", name)}
}

func errInvalid(code int, format string, args ...any) *apiError {
	return &apiError{status: 400, code: code, msg: fmt.Sprintf(format, args...)}
}

func errCheck(format string, args ...any) *apiError {
	return &apiError{status: 400, code: codeParamValidate, msg: fmt.Sprintf(format, args...), check: true}
}

var (
	namespacePattern = regexp.MustCompile(`^[\w-]+$`)
	groupPattern     = regexp.MustCompile(`^[a-zA-Z0-9\-_:.]*$`)
	clusterPattern   = regexp.MustCompile(`^[0-9a-zA-Z-]+$`)
)

// params reads request parameters (query and form body merged by
// net/http) with Nacos' rules and limits.
type params struct {
	v   url.Values
	cfg *Config
}

func (p params) opt(name, def string) string {
	if s := p.v.Get(name); s != "" {
		return s
	}
	return def
}

func (p params) req(name string) (string, *apiError) {
	s := strings.TrimSpace(p.v.Get(name))
	if s == "" {
		return "", errMissing(name)
	}
	return p.v.Get(name), nil
}

// boolParam is Apache BooleanUtils.toBoolean: "true", "on", "yes", "y",
// "t" (any case) are true; anything else is false.
func boolParam(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "on", "yes", "y", "t":
		return true
	}
	return false
}

func hasBadChars(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || (r >= 0x4E00 && r <= 0x9FA5) {
			return true
		}
	}
	return false
}

// namespace: namespaceId, default "public".
func (p params) namespace() (string, *apiError) {
	ns := strings.TrimSpace(p.v.Get("namespaceId"))
	if ns == "" {
		return naming.DefaultNamespace, nil
	}
	if utf8.RuneCountInString(ns) > p.cfg.MaxNamespaceLength {
		return "", errCheck("Param 'namespaceId/tenant' is illegal, the param length should not exceed %d.", p.cfg.MaxNamespaceLength)
	}
	if !namespacePattern.MatchString(ns) {
		return "", errCheck("Param 'namespaceId/tenant' is illegal, illegal characters should not appear in the param.")
	}
	return ns, nil
}

func (p params) checkGroup(g string) *apiError {
	if utf8.RuneCountInString(g) > p.cfg.MaxGroupLength {
		return errCheck("Param 'group' is illegal, the param length should not exceed %d.", p.cfg.MaxGroupLength)
	}
	if !groupPattern.MatchString(g) {
		return errCheck("Param 'group' is illegal, illegal characters should not appear in the param.")
	}
	return nil
}

// group: groupName, default DEFAULT_GROUP.
func (p params) group() (string, *apiError) {
	g := strings.TrimSpace(p.v.Get("groupName"))
	if g == "" {
		return naming.DefaultGroup, nil
	}
	return g, p.checkGroup(g)
}

// serviceKey reads namespaceId, groupName and serviceName; serviceName may
// carry its group ("group@@name"), which then wins over groupName.
func (p params) serviceKey() (naming.ServiceKey, *apiError) {
	ns, err := p.namespace()
	if err != nil {
		return naming.ServiceKey{}, err
	}
	raw, err := p.req("serviceName")
	if err != nil {
		return naming.ServiceKey{}, err
	}
	group, err := p.group()
	if err != nil {
		return naming.ServiceKey{}, err
	}
	return p.splitServiceName(ns, group, raw)
}

func (p params) splitServiceName(ns, group, raw string) (naming.ServiceKey, *apiError) {
	name := raw
	if g, n, ok := strings.Cut(raw, naming.GroupSeparator); ok {
		if g == "" {
			return naming.ServiceKey{}, errInvalid(codeServiceName, "Param 'serviceName' is illegal, groupName can't be empty")
		}
		if n == "" {
			return naming.ServiceKey{}, errInvalid(codeServiceName, "Param 'serviceName' is illegal, it should be format as 'groupName@@serviceName'")
		}
		if err := p.checkGroup(g); err != nil {
			return naming.ServiceKey{}, err
		}
		group, name = g, n
	}
	if strings.TrimSpace(name) == "" {
		return naming.ServiceKey{}, errMissing("serviceName")
	}
	if utf8.RuneCountInString(name) > p.cfg.MaxServiceNameLength {
		return naming.ServiceKey{}, errCheck("Param 'serviceName' is illegal, the param length should not exceed %d.", p.cfg.MaxServiceNameLength)
	}
	if strings.HasPrefix(name, "@") || strings.Contains(name, naming.GroupSeparator) || hasBadChars(name) {
		return naming.ServiceKey{}, errCheck("Param 'serviceName' is illegal, illegal characters should not appear in the param.")
	}
	return naming.ServiceKey{Namespace: ns, Group: group, Name: name}, nil
}

// cluster reads clusterName, then cluster, default DEFAULT, and checks it
// against Nacos' [0-9a-zA-Z-]+.
func (p params) cluster() (string, *apiError) {
	c := strings.TrimSpace(p.v.Get("clusterName"))
	if c == "" {
		c = strings.TrimSpace(p.v.Get("cluster"))
	}
	if c == "" {
		return naming.DefaultCluster, nil
	}
	return c, p.checkCluster(c)
}

func (p params) checkCluster(c string) *apiError {
	if utf8.RuneCountInString(c) > p.cfg.MaxClusterLength {
		return errCheck("Param 'cluster' is illegal, the param length should not exceed %d.", p.cfg.MaxClusterLength)
	}
	if !clusterPattern.MatchString(c) {
		return errInvalid(codeInstanceError, "Instance 'clusterName' should be characters with only 0-9a-zA-Z-. (current: %s)", c)
	}
	return nil
}

// clusters reads the comma list "clusters" for queries (v2 calls it
// clusterName).
func (p params) clusters() (string, []string, *apiError) {
	raw := p.v.Get("clusters")
	if raw == "" {
		raw = p.v.Get("clusterName")
	}
	var out []string
	for _, c := range strings.Split(raw, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if err := p.checkCluster(c); err != nil {
			return "", nil, err
		}
		out = append(out, c)
	}
	return raw, out, nil
}

func (p params) checkIP(ip string) *apiError {
	if utf8.RuneCountInString(ip) > p.cfg.MaxIPLength {
		return errCheck("Param 'ip' is illegal, the param length should not exceed %d.", p.cfg.MaxIPLength)
	}
	if hasBadChars(ip) {
		return errCheck("Param 'ip' is illegal, illegal characters should not appear in the param.")
	}
	return nil
}

func (p params) ip() (string, *apiError) {
	ip, err := p.req("ip")
	if err != nil {
		return "", err
	}
	return ip, p.checkIP(ip)
}

func parsePort(s string, allowZero bool) (int, *apiError) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	min := 1
	if allowZero {
		min = 0
	}
	if err != nil || n < min || n > 65535 {
		return 0, errCheck("Param 'port' is illegal, the value should be between %d and 65535.", min)
	}
	return n, nil
}

func (p params) port() (int, *apiError) {
	s, err := p.req("port")
	if err != nil {
		return 0, err
	}
	return parsePort(s, false)
}

// weight: default 1, 0..10000, finite.
func (p params) weight() (float64, *apiError) {
	s := strings.TrimSpace(p.v.Get("weight"))
	if s == "" {
		return 1, nil
	}
	w, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(w) || math.IsInf(w, 0) || w < 0 || w > 10000 {
		return 0, errInvalid(codeWeight, "instance format invalid: The weights range from 0.0 to 10000.0")
	}
	return w, nil
}

// enabled reads "enabled", then the legacy "enable", default true.
func (p params) enabled() bool {
	if s := strings.TrimSpace(p.v.Get("enabled")); s != "" {
		return boolParam(s)
	}
	return boolParam(p.opt("enable", "true"))
}

// metadata parses the metadata parameter and checks its size.
func (p params) metadata(name string) (map[string]string, *apiError) {
	m, err := parseMetadata(p.v.Get(name))
	if err != nil {
		return nil, err
	}
	return m, checkMetadataSize(m, p.cfg.MaxMetadataLength)
}

func checkMetadataSize(m map[string]string, max int) *apiError {
	n := 0
	for k, v := range m {
		n += utf8.RuneCountInString(k) + utf8.RuneCountInString(v)
	}
	if n > max {
		return errCheck("Param 'Metadata' is illegal, the param length should not exceed %d.", max)
	}
	return nil
}

// parseMetadata is UtilsAndCommons.parseMetadata: a JSON object (scalar
// values are taken as strings), or else "k=v,k2=v2" with Java's split
// rules. Empty input gives nil.
func parseMetadata(s string) (map[string]string, *apiError) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if m, ok := parseMetadataJSON(s); ok {
		return m, nil
	}
	if strings.TrimSpace(s) == "null" {
		// JSON null: what nacos-sdk-go sends for nil metadata; Jackson
		// reads it as no metadata.
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range javaSplit(s, ",") {
		parts := javaSplit(kv, "=")
		if len(parts) != 2 {
			return nil, errInvalid(codeInstanceMeta, "metadata format incorrect:%s", s)
		}
		out[parts[0]] = parts[1]
	}
	return out, nil
}

func parseMetadataJSON(s string) (map[string]string, bool) {
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || dec.More() || raw == nil {
		return nil, false
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch x := v.(type) {
		case string:
			out[k] = x
		case json.Number:
			out[k] = x.String()
		case bool:
			out[k] = strconv.FormatBool(x)
		case nil:
			out[k] = ""
		default:
			return nil, false
		}
	}
	return out, true
}

// javaSplit is Java's String.split(literal): trailing empty strings are
// removed; "" gives [""].
func javaSplit(s, sep string) []string {
	parts := strings.Split(s, sep)
	for len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 1 && parts[0] == "" && s != "" {
		return nil // s consisted of separators only
	}
	return parts
}

// preserved reads a preserved.* millisecond value from metadata.
func preserved(m map[string]string, key string, def int64) int64 {
	if s, ok := m[key]; ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return n
		}
	}
	return def
}

// Nacos defaults for beat-kept instances, in ms.
const (
	defaultBeatInterval   = 5000
	defaultBeatTimeout    = 15000
	defaultIPDeleteTimout = 30000
)

// checkBeatTimes is NamingUtils.checkInstanceIsLegal's first rule.
func checkBeatTimes(m map[string]string) *apiError {
	iv := preserved(m, naming.MetaHeartBeatInterval, defaultBeatInterval)
	if preserved(m, naming.MetaHeartBeatTimeout, defaultBeatTimeout) < iv || preserved(m, naming.MetaIPDeleteTimeout, defaultIPDeleteTimout) < iv {
		return errInvalid(codeInstanceError, "Instance 'heart beat interval' must less than 'heart beat timeout' and 'ip delete timeout'.")
	}
	return nil
}

// instanceForm is an instance as the register/update/deregister forms give
// it (Nacos InstanceForm).
type instanceForm struct {
	key      naming.ServiceKey
	inst     naming.Instance
	metaSet  bool // a metadata parameter was given
	ephemSet bool
}

// instanceAddr parses what names one instance: serviceName*, namespaceId,
// groupName, ip*, port*, clusterName|cluster.
func (p params) instanceAddr() (naming.ServiceKey, naming.Addr, *apiError) {
	key, err := p.serviceKey()
	if err != nil {
		return key, naming.Addr{}, err
	}
	ip, err := p.ip()
	if err != nil {
		return key, naming.Addr{}, err
	}
	port, err := p.port()
	if err != nil {
		return key, naming.Addr{}, err
	}
	cluster, err := p.cluster()
	if err != nil {
		return key, naming.Addr{}, err
	}
	return key, naming.Addr{IP: ip, Port: port, Cluster: cluster}, nil
}

// instance parses the full instance form: ip*, port*, serviceName*,
// namespaceId, groupName, clusterName|cluster, weight, enabled|enable,
// healthy, ephemeral (default true), metadata.
func (p params) instance() (instanceForm, *apiError) {
	key, addr, err := p.instanceAddr()
	if err != nil {
		return instanceForm{}, err
	}
	w, err := p.weight()
	if err != nil {
		return instanceForm{}, err
	}
	md, err := p.metadata("metadata")
	if err != nil {
		return instanceForm{}, err
	}
	if err := checkBeatTimes(md); err != nil {
		return instanceForm{}, err
	}
	return instanceForm{
		key: key,
		inst: naming.Instance{
			IP: addr.IP, Port: addr.Port, Weight: w, Cluster: addr.Cluster, Metadata: md,
			Healthy:   boolParam(p.opt("healthy", "true")),
			Enabled:   p.enabled(),
			Ephemeral: boolParam(p.opt("ephemeral", "true")),
		},
		metaSet:  strings.TrimSpace(p.v.Get("metadata")) != "",
		ephemSet: p.v.Get("ephemeral") != "",
	}, nil
}

// beatInfo is the "beat" parameter (Nacos RsInfo).
type beatInfo struct {
	IP          string            `json:"ip"`
	Port        int               `json:"port"`
	Weight      *float64          `json:"weight"`
	ServiceName string            `json:"serviceName"`
	Cluster     string            `json:"cluster"`
	Metadata    map[string]string `json:"metadata"`
	Ephemeral   *bool             `json:"ephemeral"`
}

// beat parses a beat request: serviceName*, clusterName, and either the
// beat JSON or ip/port. Returns the instance and whether a beat JSON came
// (only then may an unknown instance be registered).
func (p params) beat() (naming.ServiceKey, naming.Instance, bool, *apiError) {
	key, err := p.serviceKey()
	if err != nil {
		return key, naming.Instance{}, false, err
	}
	cluster, err := p.cluster()
	if err != nil {
		return key, naming.Instance{}, false, err
	}
	inst := naming.Instance{Cluster: cluster, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}
	raw := strings.TrimSpace(p.v.Get("beat"))
	if raw == "" {
		ip, err := p.ip()
		if err != nil {
			return key, inst, false, err
		}
		port, err := p.port()
		if err != nil {
			return key, inst, false, err
		}
		inst.IP, inst.Port = ip, port
		return key, inst, false, nil
	}
	var b beatInfo
	if err := json.Unmarshal([]byte(raw), &b); err != nil {
		return key, inst, false, errInvalid(codeParamValidate, "beat is not valid JSON: %v", err)
	}
	if b.IP == "" {
		return key, inst, false, errMissing("ip")
	}
	if err := p.checkIP(b.IP); err != nil {
		return key, inst, false, err
	}
	if b.Port < 1 || b.Port > 65535 {
		return key, inst, false, errCheck("Param 'port' is illegal, the value should be between 1 and 65535.")
	}
	if b.Cluster != "" {
		if err := p.checkCluster(b.Cluster); err != nil {
			return key, inst, false, err
		}
		inst.Cluster = b.Cluster
	}
	if b.Weight != nil {
		if w := *b.Weight; math.IsNaN(w) || w < 0 || w > 10000 {
			return key, inst, false, errInvalid(codeWeight, "instance format invalid: The weights range from 0.0 to 10000.0")
		}
		inst.Weight = *b.Weight
	}
	if err := checkMetadataSize(b.Metadata, p.cfg.MaxMetadataLength); err != nil {
		return key, inst, false, err
	}
	if err := checkBeatTimes(b.Metadata); err != nil {
		return key, inst, false, err
	}
	inst.IP, inst.Port, inst.Metadata = b.IP, b.Port, b.Metadata
	return key, inst, true, nil
}

// page reads pageNo and pageSize (both required, >= 1).
func (p params) page() (int, int, *apiError) {
	var out [2]int
	for i, name := range []string{"pageNo", "pageSize"} {
		s, err := p.req(name)
		if err != nil {
			return 0, 0, err
		}
		n, perr := strconv.Atoi(strings.TrimSpace(s))
		if perr != nil || n < 1 {
			return 0, 0, errInvalid(codeParamValidate, "Param '%s' is illegal: %q", name, s)
		}
		out[i] = n
	}
	return out[0], out[1], nil
}

// pageOpt reads optional pageNo and pageSize (>= 1 when given).
func (p params) pageOpt(defNo, defSize int) (int, int, *apiError) {
	out := [2]int{defNo, defSize}
	for i, name := range []string{"pageNo", "pageSize"} {
		s := strings.TrimSpace(p.v.Get(name))
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, errInvalid(codeParamValidate, "Param '%s' is illegal: %q", name, s)
		}
		out[i] = n
	}
	return out[0], out[1], nil
}

// protectThreshold: 0..1, default def.
func (p params) protectThreshold(def float64) (float64, *apiError) {
	s := strings.TrimSpace(p.v.Get("protectThreshold"))
	if s == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return 0, errInvalid(codeServiceMeta, "Param 'protectThreshold' is illegal, it should be between 0 and 1: %q", s)
	}
	return f, nil
}
