package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/zkwatch"
)

// taskSpec is one running task resolved against its clusters: everything an
// engine needs, and the fingerprint that says when it must restart.
type taskSpec struct {
	task store.SyncTask
	zk   store.ZKCluster
	reg  store.RegistryCluster
	// namespace and group are where the task registers (the registry
	// cluster's, defaulted; the store has no task-level override).
	namespace, group string
	// shadows are the running tasks with a lower id on the same destination
	// (same ZooKeeper cluster into the same registry cluster, namespace and
	// group): a service one of them covers is theirs, so two tasks never
	// sync, beat or remove the same registry service.
	shadows []store.SyncTask
	// credsFrom is set when reg's own credentials differ from those of the
	// lowest-id registry row naming the same servers: one place is one
	// identity (its tasks share one client), so the task logs in with that
	// row's credentials and says so at start.
	credsFrom *store.RegistryCluster
	// fp changes when anything above that matters changes.
	fp string
}

// name is the task's name in engines, events and logs.
func (s *taskSpec) name() string { return taskName(s.task.ID) }

func taskName(id int64) string { return fmt.Sprintf("task-%d", id) }

// marker is the engine's Cluster: the source marker is per ZooKeeper
// cluster, so tasks of one cluster hand services over to each other without
// a gap (the new owner adopts the instances).
func (s *taskSpec) marker() string { return fmt.Sprintf("zk-%d", s.zk.ID) }

// destKey identifies where a task's instances live and who may adopt them.
// The registry is named by its servers (place), not by its row: two
// registry-cluster rows naming the same servers are one place, so their
// tasks shadow each other instead of registering and beating every
// instance twice.
func (s *taskSpec) destKey() string {
	return fmt.Sprintf("%d|%s|%s|%s", s.zk.ID, s.place(), s.namespace, s.group)
}

// place is the registry's canonical server list: each server parsed
// ("host:port" or "host:port/grpcPort"), the host lower-cased, sorted,
// duplicates dropped. An unparsable entry stays as written.
func (s *taskSpec) place() string {
	seen := map[string]bool{}
	var out []string
	for _, raw := range s.reg.ServerList {
		k := strings.TrimSpace(raw)
		if srv, err := registryclient.ParseServer(k); err == nil {
			k = strings.ToLower(srv.Host) + ":" + strconv.Itoa(srv.Port) + "/" + strconv.Itoa(srv.GRPCPort)
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// zkKey identifies a shareable ZooKeeper watcher.
func (s *taskSpec) zkKey() string {
	return fmt.Sprintf("%d|%s|%s|%d", s.zk.ID, s.zk.ConnectString, s.zk.Root, s.zk.SessionTimeoutMS)
}

// clientKey identifies a shareable registry client: per registry place
// (its servers, whichever rows name them) and namespace, and per source ZooKeeper cluster, because a client beats
// one instance set per registry service (Keep replaces it) and two
// ZooKeeper clusters may feed the same service name.
func (s *taskSpec) clientKey() string {
	return fmt.Sprintf("%s|%s|zk%d", s.place(), s.namespace, s.zk.ID)
}

// covers reports whether the task syncs ZooKeeper service svc: its scope
// and patterns match, and no lower-id task on the same destination does.
// An interface's mapping (zkwatch.MappingKey) is covered with the
// interface; an application's key (zkwatch.AppKey) is matched as it is.
func (s *taskSpec) covers(svc string) bool {
	svc = strings.TrimPrefix(svc, zkwatch.MappingKeyPrefix)
	if !s.task.Matches(svc) {
		return false
	}
	for i := range s.shadows {
		if s.shadows[i].Matches(svc) {
			return false
		}
	}
	return true
}

// zkServers splits a connect string ("h1:p,h2:p", an optional /chroot
// after the last server ignored).
func zkServers(connect string) []string {
	if i := strings.Index(connect, "/"); i >= 0 {
		connect = connect[:i]
	}
	var out []string
	for _, p := range strings.Split(connect, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// rejection is a task that cannot run, with one clear reason.
type rejection struct {
	task   store.SyncTask
	reason string
}

// resolve turns the store's rows into the specs of the tasks to run, by
// task id, and the running tasks that cannot run. Paused and deleted tasks
// are in neither. Deterministic: the same rows give the same result.
func resolve(tasks []store.SyncTask, zks []store.ZKCluster, regs []store.RegistryCluster) ([]*taskSpec, []rejection) {
	zkByID := make(map[int64]store.ZKCluster, len(zks))
	for _, c := range zks {
		zkByID[c.ID] = c
	}
	regByID := make(map[int64]store.RegistryCluster, len(regs))
	// identity: per place, the lowest-id row naming those servers; its
	// credentials log in every task on the place (a shared client has one
	// login, and which task started first must not decide it).
	identity := map[string]store.RegistryCluster{}
	for _, c := range regs {
		regByID[c.ID] = c
		p := (&taskSpec{reg: c}).place()
		if cur, ok := identity[p]; !ok || c.ID < cur.ID {
			identity[p] = c
		}
	}
	var specs []*taskSpec
	var rejected []rejection
	for _, t := range tasks { // ListTasks orders by id
		if t.State != store.TaskRunning {
			continue
		}
		zk, zok := zkByID[t.SourceClusterID]
		reg, rok := regByID[t.DestClusterID]
		var missing []string
		if !zok {
			missing = append(missing, fmt.Sprintf("source ZooKeeper cluster id %d does not exist", t.SourceClusterID))
		}
		if !rok {
			missing = append(missing, fmt.Sprintf("destination registry cluster id %d does not exist", t.DestClusterID))
		}
		if len(missing) > 0 {
			rejected = append(rejected, rejection{task: t, reason: fmt.Sprintf("task %d: %s", t.ID, strings.Join(missing, "; "))})
			continue
		}
		if len(zkServers(zk.ConnectString)) == 0 {
			rejected = append(rejected, rejection{task: t, reason: fmt.Sprintf("task %d: ZooKeeper cluster %q (id %d) has no server in %q", t.ID, zk.Name, zk.ID, zk.ConnectString)})
			continue
		}
		if len(reg.ServerList) == 0 {
			rejected = append(rejected, rejection{task: t, reason: fmt.Sprintf("task %d: registry cluster %q (id %d) has no server", t.ID, reg.Name, reg.ID)})
			continue
		}
		if t.Scope == store.ScopeService && strings.TrimSpace(t.Service) == "" {
			rejected = append(rejected, rejection{task: t, reason: fmt.Sprintf("task %d: scope service without a service", t.ID)})
			continue
		}
		s := &taskSpec{task: t, zk: zk, reg: reg, namespace: reg.Namespace, group: reg.GroupName}
		if id := identity[s.place()]; id.ID != reg.ID && (id.Username != reg.Username || id.Password != reg.Password) {
			s.reg.Username, s.reg.Password = id.Username, id.Password
			s.credsFrom = &id
		}
		if s.namespace == "" {
			s.namespace = "public"
		}
		if s.group == "" {
			s.group = "DEFAULT_GROUP"
		}
		for _, prev := range specs {
			if prev.destKey() == s.destKey() {
				s.shadows = append(s.shadows, prev.task)
			}
		}
		s.fp = fingerprint(s)
		specs = append(specs, s)
	}
	return specs, rejected
}

// fingerprint covers every field that changes what an engine does; row
// timestamps are left out (a state change touches updated_at).
func fingerprint(s *taskSpec) string {
	type filter struct {
		Scope            store.TaskScope
		Service          string
		Include, Exclude []string
	}
	f := func(t store.SyncTask) filter {
		return filter{Scope: t.Scope, Service: t.Service, Include: t.Include, Exclude: t.Exclude}
	}
	v := struct {
		Task     filter
		ZK, Reg  string
		Registry []string
		Kind     store.RegistryKind
		Shadows  []filter
		// Creds: a changed login restarts the task on a new client (a
		// digest, so the fingerprint never holds the password).
		Creds string
	}{Task: f(s.task), ZK: s.zkKey(), Reg: s.destKey(), Registry: s.reg.ServerList, Kind: s.reg.Kind,
		Creds: credsDigest(s.reg.Username, s.reg.Password)}
	for _, sh := range s.shadows {
		v.Shadows = append(v.Shadows, f(sh))
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// credsDigest identifies a login without holding it.
func credsDigest(user, password string) string {
	if user == "" && password == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(user + "\x00" + password))
	return hex.EncodeToString(sum[:8])
}
