package httpapi

import (
	"strconv"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// instanceJSON is Nacos' Instance as Jackson writes it over HTTP (2.x):
// the wire fields, then the instanceIdGenerator getter.
type instanceJSON struct {
	wire.Instance
	InstanceIDGenerator string `json:"instanceIdGenerator"`
}

// serviceInfoJSON is Nacos' ServiceInfo; over HTTP v1 name is grouped.
type serviceInfoJSON struct {
	Name                     string         `json:"name"`
	GroupName                string         `json:"groupName"`
	Clusters                 string         `json:"clusters"`
	CacheMillis              int64          `json:"cacheMillis"`
	Hosts                    []instanceJSON `json:"hosts"`
	LastRefTime              int64          `json:"lastRefTime"`
	Checksum                 string         `json:"checksum"`
	AllIPs                   bool           `json:"allIPs"`
	ReachProtectionThreshold bool           `json:"reachProtectionThreshold"`
	Valid                    bool           `json:"valid"`
}

type instanceDetail struct {
	Service     string            `json:"service"`
	IP          string            `json:"ip"`
	Port        int               `json:"port"`
	ClusterName string            `json:"clusterName"`
	Weight      float64           `json:"weight"`
	Healthy     bool              `json:"healthy"`
	InstanceID  string            `json:"instanceId"`
	Metadata    map[string]string `json:"metadata"`
}

// instanceDetailV2 is Nacos' InstanceDetailInfoVo: the same fields with
// serviceName instead of service.
type instanceDetailV2 struct {
	Service     string            `json:"serviceName"`
	IP          string            `json:"ip"`
	Port        int               `json:"port"`
	ClusterName string            `json:"clusterName"`
	Weight      float64           `json:"weight"`
	Healthy     bool              `json:"healthy"`
	InstanceID  string            `json:"instanceId"`
	Metadata    map[string]string `json:"metadata"`
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// instanceID is the registry's id, or Nacos' default one when empty.
func instanceID(key naming.ServiceKey, in naming.Instance) string {
	if in.ID != "" {
		return in.ID
	}
	return in.IP + "#" + strconv.Itoa(in.Port) + "#" + in.Cluster + "#" + key.Grouped()
}

func (a *API) serviceInfo(key naming.ServiceKey, clusters string, si naming.ServiceInfo) serviceInfoJSON {
	return renderServiceInfo(key, clusters, si, a.cfg.CacheMillis, a.deps.Now)
}

// renderServiceInfo is the instance-list answer of si; cacheMillis and now
// fill a zero CacheMillis and LastRefTime.
func renderServiceInfo(key naming.ServiceKey, clusters string, si naming.ServiceInfo, cacheMillis int64, now func() time.Time) serviceInfoJSON {
	out := serviceInfoJSON{
		Name:                     key.Grouped(),
		GroupName:                key.Group,
		Clusters:                 clusters,
		CacheMillis:              si.CacheMillis,
		Hosts:                    make([]instanceJSON, 0, len(si.Hosts)),
		LastRefTime:              si.LastRefTime,
		Checksum:                 si.Checksum,
		AllIPs:                   si.AllIPs,
		ReachProtectionThreshold: si.ReachProtectionThreshold,
		Valid:                    true,
	}
	if out.CacheMillis == 0 {
		out.CacheMillis = cacheMillis
	}
	if out.LastRefTime == 0 {
		out.LastRefTime = now().UnixMilli()
	}
	for _, h := range si.Hosts {
		cluster := h.Cluster
		if cluster == "" {
			cluster = naming.DefaultCluster
		}
		out.Hosts = append(out.Hosts, instanceJSON{Instance: wire.Instance{
			InstanceID:                instanceID(key, h),
			IP:                        h.IP,
			Port:                      h.Port,
			Weight:                    h.Weight,
			Healthy:                   h.Healthy,
			Enabled:                   h.Enabled,
			Ephemeral:                 h.Ephemeral,
			ClusterName:               cluster,
			ServiceName:               key.Grouped(),
			Metadata:                  nonNil(h.Metadata),
			InstanceHeartBeatInterval: preserved(h.Metadata, naming.MetaHeartBeatInterval, defaultBeatInterval),
			InstanceHeartBeatTimeOut:  preserved(h.Metadata, naming.MetaHeartBeatTimeout, defaultBeatTimeout),
			IPDeleteTimeout:           preserved(h.Metadata, naming.MetaIPDeleteTimeout, defaultIPDeleteTimout),
		}, InstanceIDGenerator: "simple"})
	}
	return out
}
