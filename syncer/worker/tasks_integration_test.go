package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/go-zookeeper/zk"
	"gorm.io/gorm"

	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/store"
)

// hostsIn lists a service's instances in a namespace through the registry's
// HTTP API.
func hostsIn(t *testing.T, regAddr, namespace, service string) []map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + regAddr + "/nacos/v1/ns/instance/list?" +
		url.Values{"serviceName": {service}, "namespaceId": {namespace}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		Hosts []map[string]any `json:"hosts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a.Hosts
}

func nacosName(iface string) string { return "providers:" + iface + "::" }

// taskStatus finds a task in the worker's status.
func taskStatus(w *Worker, id int64) (TaskStatus, bool) {
	for _, ts := range w.Status().Tasks {
		if ts.ID == id {
			return ts, true
		}
	}
	return TaskStatus{}, false
}

// TestWorkerRunsEveryTask: one worker syncs every running task of the store,
// each on its own clusters, and follows the store while it runs: a task
// added, edited, paused or deleted takes effect within a few reloads; a
// task pointing at a cluster that does not exist is reported and the other
// tasks go on.
func TestWorkerRunsEveryTask(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Root "dubbo": 4 services × 2, synced by the seeded task 1 into "public".
	lcfg, stk := newStack(ctx, t, 4, 2, 0)
	loader, regAddr := stk.loader, stk.regAddr
	// Root "dubbo2" on the same ZooKeeper: 3 other services × 2.
	lcfg2 := lcfg
	lcfg2.Root, lcfg2.Prefix, lcfg2.Services = "dubbo2", "org.other", 3
	loader2 := seedZK(ctx, t, lcfg2)

	wcfg := stk.workerConfig(t, "127.0.0.1:0")
	wcfg.TaskPoll = 200 * time.Millisecond
	w, err := Start(ctx, wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	// The worker's own store handle, as an in-process console would use it
	// (a second SQLite handle's transactions may fail with SQLITE_BUSY).
	st := w.st

	count := func(ns string, l *zkload.Loader, n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = len(hostsIn(t, regAddr, ns, nacosName(l.Interface(i))))
		}
		return out
	}
	all := func(ns string, l *zkload.Loader, n, want int) func() bool {
		return func() bool {
			for _, c := range count(ns, l, n) {
				if c != want {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "the seeded task to sync root dubbo into public", 60*time.Second, all("public", loader, 4, 2))

	// A second task, added while the worker runs: root dubbo2 into ns2.
	zk2 := &store.ZKCluster{Name: "zk-root2", ConnectString: stk.zk.Addr(), Root: "/dubbo2"}
	if err := st.CreateZKCluster(ctx, zk2); err != nil {
		t.Fatal(err)
	}
	reg2 := &store.RegistryCluster{Name: "reg-ns2", Kind: store.RegistryBundled, ServerList: []string{regAddr}, Namespace: "ns2"}
	if err := st.CreateRegistryCluster(ctx, reg2); err != nil {
		t.Fatal(err)
	}
	task2 := &store.SyncTask{SourceClusterID: zk2.ID, DestClusterID: reg2.ID, Scope: store.ScopeFull, CreatedBy: "test"}
	if err := st.CreateTask(ctx, task2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the added task to sync root dubbo2 into ns2", 30*time.Second, all("ns2", loader2, 3, 2))
	for i, c := range count("public", loader2, 3) {
		if c != 0 {
			t.Fatalf("root dubbo2's service %d has %d instances in public, want 0", i, c)
		}
	}
	for i, c := range count("ns2", loader, 4) {
		if c != 0 {
			t.Fatalf("root dubbo's service %d has %d instances in ns2, want 0", i, c)
		}
	}

	// Editing task 2's include pattern: only its service 0 stays in ns2.
	task2.Include = []string{loader2.Interface(0)}
	if err := st.UpdateTask(ctx, task2, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "task 2's other services to leave ns2", 30*time.Second, func() bool {
		c := count("ns2", loader2, 3)
		return c[0] == 2 && c[1] == 0 && c[2] == 0
	})

	// A single-service task: root dubbo's service 1 into ns3.
	reg3 := &store.RegistryCluster{Name: "reg-ns3", Kind: store.RegistryBundled, ServerList: []string{regAddr}, Namespace: "ns3"}
	if err := st.CreateRegistryCluster(ctx, reg3); err != nil {
		t.Fatal(err)
	}
	tasks, err := st.ListTasks(ctx, store.TaskFilter{})
	if err != nil || len(tasks) != 2 {
		t.Fatalf("tasks = %v, %v", tasks, err)
	}
	task3 := &store.SyncTask{SourceClusterID: tasks[0].SourceClusterID, DestClusterID: reg3.ID, Scope: store.ScopeService,
		Service: loader.Interface(1), CreatedBy: "test"}
	if err := st.CreateTask(ctx, task3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the single-service task to sync its service into ns3", 30*time.Second, func() bool {
		return len(hostsIn(t, regAddr, "ns3", nacosName(loader.Interface(1)))) == 2
	})
	for _, i := range []int{0, 2, 3} {
		if n := len(hostsIn(t, regAddr, "ns3", nacosName(loader.Interface(i)))); n != 0 {
			t.Fatalf("the single-service task synced service %d too (%d instances)", i, n)
		}
	}

	// A task pointing at a ZooKeeper cluster that does not exist (written
	// behind the store's back: it checks clusters at creation).
	raw, err := gorm.Open(sqlite.Open(strings.TrimPrefix(wcfg.DB, "sqlite://")+"?_pragma=busy_timeout(10000)"), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := raw.Exec(`INSERT INTO sync_tasks (source_cluster_id, dest_cluster_id, scope, service, include_patterns, exclude_patterns, state, created_by, updated_by, created_at, updated_at)
		VALUES (999, ?, 'full', '', '[]', '[]', 'running', 'test', 'test', ?, ?)`, reg2.ID, now, now).Error; err != nil {
		t.Fatal(err)
	}
	if db, err := raw.DB(); err == nil {
		_ = db.Close()
	}
	var bad int64
	waitFor(t, "the task with a missing cluster to be reported", 30*time.Second, func() bool {
		evs, err := st.ListEvents(ctx, store.EventFilter{Kind: string(EventTaskRejected)})
		if err != nil || len(evs) == 0 {
			return false
		}
		if !strings.Contains(evs[0].Detail, "source ZooKeeper cluster id 999 does not exist") {
			t.Fatalf("rejection event detail = %q, want the missing cluster id", evs[0].Detail)
		}
		for _, ts := range w.Status().Tasks {
			if ts.Error != "" {
				bad = ts.ID
			}
		}
		return bad != 0
	})
	if !strings.Contains(mustTask(t, w, bad).Error, fmt.Sprintf("task %d:", bad)) {
		t.Fatalf("status error = %q, want the task's id", mustTask(t, w, bad).Error)
	}
	for _, id := range []int64{tasks[0].ID, task2.ID, task3.ID} {
		if ts := mustTask(t, w, id); !ts.Running {
			t.Fatalf("task %d not running after another task was rejected: %+v", id, ts)
		}
	}

	// Metrics: every engine's, labelled by task, in one gatherer (the
	// console serves it as /metrics).
	mfs, err := w.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	labelled := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "ferry_sync_instances_registered" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "task" {
					labelled[l.GetValue()] = true
				}
			}
		}
	}
	for _, id := range []int64{tasks[0].ID, task2.ID, task3.ID} {
		if !labelled[fmt.Sprintf("task-%d", id)] {
			t.Fatalf("metrics lack ferry_sync_instances_registered{task=\"task-%d\"} (have %v)", id, labelled)
		}
	}
	// Confirming one task's held removals reaches its engine; an unknown
	// task reaches none.
	if n := w.Confirm(task3.ID); n != 1 {
		t.Fatalf("Confirm(task %d) told %d engines, want 1", task3.ID, n)
	}
	if n := w.Confirm(999); n != 0 {
		t.Fatalf("Confirm(999) told %d engines", n)
	}

	// Pausing task 3 deregisters what it registered (task 1 keeps its own
	// copy in public), and a provider added to its service is no longer
	// synced into ns3 while task 1 still syncs it.
	if err := st.SetTaskState(ctx, task3.ID, store.TaskPaused, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "task 3 to stop and its instances to leave ns3", 30*time.Second, func() bool {
		ts, ok := taskStatus(w, task3.ID)
		return ok && ts.State == store.TaskPaused && !ts.Running &&
			len(hostsIn(t, regAddr, "ns3", nacosName(loader.Interface(1)))) == 0
	})
	p := loader.ProviderPath(1, loader.ProviderURL(1, lcfg.Instances, time.Now().UnixMilli()))
	if _, err := loader.Conn().Create(p, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "task 1 to sync the new provider into public", 30*time.Second, func() bool {
		return len(hostsIn(t, regAddr, "public", nacosName(loader.Interface(1)))) == 3
	})
	if n := len(hostsIn(t, regAddr, "ns3", nacosName(loader.Interface(1)))); n != 0 {
		t.Fatalf("the paused task synced a new provider: ns3 has %d instances, want 0", n)
	}

	// Deleting task 2 deregisters its instances at once.
	if err := st.SetTaskState(ctx, task2.ID, store.TaskDeleted, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted task's instances to leave ns2", 30*time.Second, func() bool {
		return count("ns2", loader2, 1)[0] == 0
	})
	if _, ok := taskStatus(w, task2.ID); ok {
		t.Fatalf("the deleted task is still listed")
	}
	// Task 1 went on through all of it.
	if c := count("public", loader, 4); c[0] != 2 || c[1] != 3 || c[2] != 2 || c[3] != 2 {
		t.Fatalf("public = %v, want [2 3 2 2]", c)
	}
}

func mustTask(t *testing.T, w *Worker, id int64) TaskStatus {
	t.Helper()
	ts, ok := taskStatus(w, id)
	if !ok {
		t.Fatalf("task %d not in the status", id)
	}
	return ts
}

// TestWorkerSharesWatcherAndClient: tasks of one ZooKeeper cluster into one
// registry cluster and namespace share one watcher and one client; the
// client goes when its last task does.
func TestWorkerSharesWatcherAndClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, stk := newStack(ctx, t, 4, 1, 0)
	loader, regAddr := stk.loader, stk.regAddr
	wcfg := stk.workerConfig(t, "")
	wcfg.TaskPoll = 100 * time.Millisecond
	w, err := Start(ctx, wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	// The worker's own store handle, as an in-process console would use it
	// (a second SQLite handle's transactions may fail with SQLITE_BUSY).
	st := w.st
	tasks, err := st.ListTasks(ctx, store.TaskFilter{})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("tasks = %v, %v", tasks, err)
	}
	// Narrow the seeded task to service 0 and give service 1 a task of its
	// own on the same clusters (another group would be another destination;
	// this one shares everything).
	tasks[0].Include = []string{loader.Interface(0)}
	if err := st.UpdateTask(ctx, &tasks[0], "test"); err != nil {
		t.Fatal(err)
	}
	t2 := &store.SyncTask{SourceClusterID: tasks[0].SourceClusterID, DestClusterID: tasks[0].DestClusterID,
		Scope: store.ScopeService, Service: loader.Interface(1), CreatedBy: "test"}
	if err := st.CreateTask(ctx, t2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "services 0 and 1 synced, 2 and 3 not", 30*time.Second, func() bool {
		n := func(i int) int { return len(hostsIn(t, regAddr, "public", nacosName(loader.Interface(i)))) }
		if n(0) != 1 || n(1) != 1 || n(2) != 0 || n(3) != 0 {
			return false
		}
		// Both engines running now: the narrowed task restarts, and between
		// its stop and its start the registry still shows its instances
		// (released, not deregistered) while it holds no shares.
		t1, ok1 := taskStatus(w, tasks[0].ID)
		t2s, ok2 := taskStatus(w, t2.ID)
		return ok1 && ok2 && t1.Running && t2s.Running
	})
	shares := func() (int, int) {
		w.mgr.mu.Lock()
		defer w.mgr.mu.Unlock()
		return len(w.mgr.zks), len(w.mgr.clients)
	}
	if z, c := shares(); z != 1 || c != 1 {
		t.Fatalf("two tasks on one cluster pair: %d watchers, %d clients, want 1 and 1", z, c)
	}
	for _, id := range []int64{tasks[0].ID, t2.ID} {
		if err := st.SetTaskState(ctx, id, store.TaskPaused, "test"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the watcher and client closed with their last task", 30*time.Second, func() bool {
		z, c := shares()
		return z == 0 && c == 0
	})
	if st := w.Status(); st.ZKSynced || st.Engine.Registered != 0 {
		t.Fatalf("with every task paused: status %+v", st)
	}
}
