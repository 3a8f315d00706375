package naming

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// NormalizeKey fills the default namespace and group and checks the names.
func (r *Registry) NormalizeKey(k ServiceKey) (ServiceKey, error) {
	if k.Namespace == "" {
		k.Namespace = DefaultNamespace
	}
	if k.Group == "" {
		k.Group = DefaultGroup
	}
	if strings.TrimSpace(k.Name) == "" {
		return k, fmt.Errorf("%w: service name is empty", ErrInvalidParam)
	}
	for _, s := range [...]struct{ field, v string }{{"namespace", k.Namespace}, {"group", k.Group}, {"service name", k.Name}} {
		if len(s.v) > r.cfg.MaxNameLen {
			return k, fmt.Errorf("%w: %s is %d bytes (max %d)", ErrLimitExceeded, s.field, len(s.v), r.cfg.MaxNameLen)
		}
		if strings.Contains(s.v, GroupSeparator) {
			return k, fmt.Errorf("%w: %s %q contains %q", ErrInvalidParam, s.field, s.v, GroupSeparator)
		}
	}
	return k, nil
}

func validCluster(c string) bool {
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '-') {
			return false
		}
	}
	return c != ""
}

// metaMillis reads a preserved.* metadata value in ms; ok=false when absent.
func metaMillis(md map[string]string, key string) (time.Duration, bool, error) {
	s, ok := md[key]
	if !ok || s == "" {
		return 0, false, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, false, fmt.Errorf("%w: metadata %s=%q is not a positive number of ms", ErrInvalidParam, key, s)
	}
	return time.Duration(v) * time.Millisecond, true, nil
}

// BeatTimes returns a beat-kept instance's beat interval, unhealthy
// timeout and delete timeout: its preserved.* metadata when positive
// numbers of ms, else the config's defaults.
func (c Config) BeatTimes(md map[string]string) (interval, timeout, del time.Duration) {
	interval, timeout, del = c.BeatInterval, c.BeatTimeout, c.DeleteTimeout
	if v, ok, _ := metaMillis(md, MetaHeartBeatInterval); ok {
		interval = v
	}
	if v, ok, _ := metaMillis(md, MetaHeartBeatTimeout); ok {
		timeout = v
	}
	if v, ok, _ := metaMillis(md, MetaIPDeleteTimeout); ok {
		del = v
	}
	return
}

func (r *Registry) beatTimes(md map[string]string) (interval, timeout, del time.Duration) {
	return r.cfg.BeatTimes(md)
}

// normalizeInstance checks an instance and fills its defaults: the
// generated id (with the cluster as sent, as Nacos does), cluster DEFAULT,
// the ephemeral flag of its source. Metadata is copied.
func (r *Registry) normalizeInstance(k ServiceKey, in Instance, ephemeral bool) (Instance, error) {
	if strings.TrimSpace(in.IP) == "" {
		return in, fmt.Errorf("%w: ip is empty", ErrInvalidParam)
	}
	if len(in.IP) > r.cfg.MaxNameLen || len(in.Cluster) > r.cfg.MaxNameLen || len(in.ID) > r.cfg.MaxNameLen {
		return in, fmt.Errorf("%w: ip, cluster or instance id longer than %d bytes", ErrLimitExceeded, r.cfg.MaxNameLen)
	}
	if strings.ContainsAny(in.IP, " #,\t\n") {
		return in, fmt.Errorf("%w: ip %q", ErrInvalidParam, in.IP)
	}
	if in.Port < 1 || in.Port > 65535 {
		return in, fmt.Errorf("%w: port %d not in 1..65535", ErrInvalidParam, in.Port)
	}
	if math.IsNaN(in.Weight) || in.Weight < 0 || in.Weight > 10000 {
		return in, fmt.Errorf("%w: weight %v not in 0..10000", ErrInvalidParam, in.Weight)
	}
	if in.Cluster != "" && !validCluster(in.Cluster) {
		return in, fmt.Errorf("%w: cluster name %q must match [0-9a-zA-Z-]+", ErrInvalidParam, in.Cluster)
	}
	if len(in.Metadata) > r.cfg.MaxMetadataEntries {
		return in, fmt.Errorf("%w: %d metadata entries (max %d)", ErrLimitExceeded, len(in.Metadata), r.cfg.MaxMetadataEntries)
	}
	size := 0
	var md map[string]string
	if len(in.Metadata) > 0 {
		md = make(map[string]string, len(in.Metadata))
		for kk, v := range in.Metadata {
			size += len(kk) + len(v)
			md[kk] = v
		}
	}
	if size > r.cfg.MaxMetadataBytes {
		return in, fmt.Errorf("%w: metadata is %d bytes (max %d)", ErrLimitExceeded, size, r.cfg.MaxMetadataBytes)
	}
	iv, okI, err := metaMillis(md, MetaHeartBeatInterval)
	if err != nil {
		return in, err
	}
	to, okT, err := metaMillis(md, MetaHeartBeatTimeout)
	if err != nil {
		return in, err
	}
	del, okD, err := metaMillis(md, MetaIPDeleteTimeout)
	if err != nil {
		return in, err
	}
	if !okI {
		iv = r.cfg.BeatInterval
	}
	if okT && to < iv || okD && del < iv {
		return in, fmt.Errorf("%w: heart beat timeout and ip delete timeout must be ≥ the heart beat interval", ErrInvalidParam)
	}
	in.Metadata = md
	if in.ID == "" {
		in.ID = in.IP + "#" + strconv.Itoa(in.Port) + "#" + in.Cluster + "#" + k.Grouped()
	}
	if in.Cluster == "" {
		in.Cluster = DefaultCluster
	}
	in.Ephemeral = ephemeral
	return in, nil
}
