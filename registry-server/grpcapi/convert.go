package grpcapi

import (
	"strconv"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// toWireInstance renders an instance as Nacos returns it: grouped
// serviceName, metadata never null, the derived heart-beat getters.
func toWireInstance(in naming.Instance, grouped string, cfg naming.Config) wire.Instance {
	md := in.Metadata
	if md == nil {
		md = map[string]string{}
	}
	iv, to, del := cfg.BeatInterval.Milliseconds(), cfg.BeatTimeout.Milliseconds(), cfg.DeleteTimeout.Milliseconds()
	if v, err := strconv.ParseInt(md[naming.MetaHeartBeatInterval], 10, 64); err == nil && v > 0 {
		iv = v
	}
	if v, err := strconv.ParseInt(md[naming.MetaHeartBeatTimeout], 10, 64); err == nil && v > 0 {
		to = v
	}
	if v, err := strconv.ParseInt(md[naming.MetaIPDeleteTimeout], 10, 64); err == nil && v > 0 {
		del = v
	}
	return wire.Instance{
		InstanceID: in.ID, IP: in.IP, Port: in.Port, Weight: in.Weight, Healthy: in.Healthy, Enabled: in.Enabled,
		Ephemeral: in.Ephemeral, ClusterName: in.Cluster, ServiceName: grouped, Metadata: md,
		InstanceHeartBeatInterval: iv, InstanceHeartBeatTimeOut: to, IPDeleteTimeout: del,
	}
}

// toWireServiceInfo renders a ServiceInfo for the gRPC path (ungrouped name).
func toWireServiceInfo(si naming.ServiceInfo, cfg naming.Config) wire.ServiceInfo {
	grouped := si.Key.Grouped()
	hosts := make([]wire.Instance, len(si.Hosts))
	for i, in := range si.Hosts {
		hosts[i] = toWireInstance(in, grouped, cfg)
	}
	return wire.ServiceInfo{
		Name: si.Key.Name, GroupName: si.Key.Group, Clusters: si.Clusters, CacheMillis: si.CacheMillis,
		Hosts: hosts, LastRefTime: si.LastRefTime, Checksum: si.Checksum, AllIPs: si.AllIPs,
		ReachProtectionThreshold: si.ReachProtectionThreshold, Valid: true,
	}
}

// fromWireInstance reads a request's instance.
func fromWireInstance(in wire.Instance) naming.Instance {
	return naming.Instance{ID: in.InstanceID, IP: in.IP, Port: in.Port, Weight: in.Weight, Healthy: in.Healthy,
		Enabled: in.Enabled, Ephemeral: in.Ephemeral, Cluster: in.ClusterName, Metadata: in.Metadata}
}
