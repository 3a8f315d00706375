package grpcapi

import (
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
	iv, to, del := cfg.BeatTimes(md)
	return wire.Instance{
		InstanceID: in.ID, IP: in.IP, Port: in.Port, Weight: in.Weight, Healthy: in.Healthy, Enabled: in.Enabled,
		Ephemeral: in.Ephemeral, ClusterName: in.Cluster, ServiceName: grouped, Metadata: md,
		InstanceHeartBeatInterval: iv.Milliseconds(), InstanceHeartBeatTimeOut: to.Milliseconds(), IPDeleteTimeout: del.Milliseconds(),
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
