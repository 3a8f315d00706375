package worker

import (
	"strings"
	"testing"

	"github.com/ferrysync/ferry/store"
)

func TestResolve(t *testing.T) {
	zks := []store.ZKCluster{{ID: 1, Name: "zk-a", ConnectString: "h1:2181,h2:2181", Root: "/dubbo"},
		{ID: 2, Name: "zk-b", ConnectString: "h3:2181/chroot", Root: "/dubbo"}}
	regs := []store.RegistryCluster{{ID: 10, Name: "reg", ServerList: []string{"r:8848"}, Namespace: "", GroupName: ""},
		{ID: 11, Name: "reg-ns", ServerList: []string{"r:8848"}, Namespace: "ns", GroupName: "G"}}
	tasks := []store.SyncTask{
		{ID: 1, SourceClusterID: 1, DestClusterID: 10, Scope: store.ScopeFull, Include: []string{"org.a.*"}, State: store.TaskRunning},
		{ID: 2, SourceClusterID: 1, DestClusterID: 10, Scope: store.ScopeFull, State: store.TaskRunning},
		{ID: 3, SourceClusterID: 2, DestClusterID: 11, Scope: store.ScopeService, Service: "org.b.Svc", State: store.TaskRunning},
		{ID: 4, SourceClusterID: 99, DestClusterID: 10, Scope: store.ScopeFull, State: store.TaskRunning},
		{ID: 5, SourceClusterID: 98, DestClusterID: 97, Scope: store.ScopeFull, State: store.TaskRunning},
		{ID: 6, SourceClusterID: 1, DestClusterID: 11, Scope: store.ScopeFull, State: store.TaskPaused},
		{ID: 7, SourceClusterID: 99, DestClusterID: 11, Scope: store.ScopeFull, State: store.TaskDeleted},
	}
	specs, rejected := resolve(tasks, zks, regs)
	if len(specs) != 3 || specs[0].task.ID != 1 || specs[1].task.ID != 2 || specs[2].task.ID != 3 {
		t.Fatalf("specs = %v, want tasks 1, 2, 3", specs)
	}
	if len(rejected) != 2 {
		t.Fatalf("rejected = %v, want tasks 4 and 5", rejected)
	}
	for _, r := range rejected {
		switch r.task.ID {
		case 4:
			if r.reason != "task 4: source ZooKeeper cluster id 99 does not exist" {
				t.Errorf("task 4 rejected with %q", r.reason)
			}
		case 5:
			if !strings.Contains(r.reason, "task 5") || !strings.Contains(r.reason, "cluster id 98") || !strings.Contains(r.reason, "cluster id 97") {
				t.Errorf("task 5 rejected with %q, want both missing clusters", r.reason)
			}
		default:
			t.Errorf("task %d rejected: %q", r.task.ID, r.reason)
		}
	}

	// Defaults, and the destination of task 3.
	if s := specs[0]; s.namespace != "public" || s.group != "DEFAULT_GROUP" || s.marker() != "zk-1" {
		t.Errorf("task 1: namespace %q group %q marker %q", s.namespace, s.group, s.marker())
	}
	if s := specs[2]; s.namespace != "ns" || s.group != "G" || s.marker() != "zk-2" {
		t.Errorf("task 3: namespace %q group %q marker %q", s.namespace, s.group, s.marker())
	}

	// Coverage: task 2 (full) leaves org.a.* to the lower-id task 1 on the
	// same destination; task 3 covers its one service.
	for _, c := range []struct {
		spec int
		svc  string
		want bool
	}{
		{0, "org.a.X", true}, {0, "org.b.Y", false},
		{1, "org.a.X", false}, {1, "org.b.Y", true},
		{2, "org.b.Svc", true}, {2, "org.b.Svc2", false},
	} {
		if got := specs[c.spec].covers(c.svc); got != c.want {
			t.Errorf("task %d covers %s = %v, want %v", specs[c.spec].task.ID, c.svc, got, c.want)
		}
	}
	// A stopped task deregisters what no task on its destination covers.
	gone := uncovered(specs[:1], specs[1].destKey()) // task 2 deleted, task 1 stays
	if gone("org.a.X") || !gone("org.b.Y") {
		t.Errorf("after deleting task 2: org.a.X uncovered %v (want false), org.b.Y %v (want true)", gone("org.a.X"), gone("org.b.Y"))
	}

	// The fingerprint follows the task, its clusters and its shadows, not
	// the row's timestamps or state bookkeeping.
	again, _ := resolve(tasks, zks, regs)
	for i := range specs {
		if specs[i].fp != again[i].fp {
			t.Fatalf("fingerprint of task %d not stable", specs[i].task.ID)
		}
	}
	edited := append([]store.SyncTask(nil), tasks...)
	edited[0].Include = []string{"org.c.*"}
	after, _ := resolve(edited, zks, regs)
	if after[0].fp == specs[0].fp || after[1].fp == specs[1].fp || after[2].fp != specs[2].fp {
		t.Errorf("editing task 1's include: want tasks 1 and 2 (its shadow changed) restarted, task 3 not")
	}
	regs2 := append([]store.RegistryCluster(nil), regs...)
	regs2[1].ServerList = []string{"r2:8848"}
	after, _ = resolve(tasks, zks, regs2)
	if after[2].fp == specs[2].fp || after[0].fp != specs[0].fp {
		t.Errorf("editing registry cluster 11: want task 3 restarted, task 1 not")
	}

	if got := zkServers("h1:2181, h2:2181/chroot"); len(got) != 2 || got[1] != "h2:2181" {
		t.Errorf("zkServers = %v", got)
	}
	if got := zkRoot("h3:2181/chroot", "/dubbo"); got != "chroot/dubbo" {
		t.Errorf("zkRoot = %q", got)
	}
}

// Two registry-cluster rows naming the same servers (in another order and
// case) are one place: a later full task into the second row is shadowed
// by the first (no double registration) and shares its client.
func TestResolveSameServersOnePlace(t *testing.T) {
	zks := []store.ZKCluster{{ID: 1, Name: "zk", ConnectString: "h1:2181", Root: "/dubbo"}}
	regs := []store.RegistryCluster{
		{ID: 10, Name: "reg-a", ServerList: []string{"R1:8848", "r2:8848"}},
		{ID: 11, Name: "reg-b", ServerList: []string{"r2:8848", "r1:8848/9848"}},
		{ID: 12, Name: "reg-c", ServerList: []string{"r3:8848"}},
	}
	tasks := []store.SyncTask{
		{ID: 1, SourceClusterID: 1, DestClusterID: 10, Scope: store.ScopeFull, State: store.TaskRunning},
		{ID: 2, SourceClusterID: 1, DestClusterID: 11, Scope: store.ScopeFull, State: store.TaskRunning},
		{ID: 3, SourceClusterID: 1, DestClusterID: 12, Scope: store.ScopeFull, State: store.TaskRunning},
	}
	specs, rejected := resolve(tasks, zks, regs)
	if len(specs) != 3 || len(rejected) != 0 {
		t.Fatalf("specs %v rejected %v", specs, rejected)
	}
	if specs[0].destKey() != specs[1].destKey() || specs[0].clientKey() != specs[1].clientKey() {
		t.Fatalf("same servers, two places: %q / %q", specs[0].destKey(), specs[1].destKey())
	}
	if specs[1].covers("org.foo.Bar") || !specs[0].covers("org.foo.Bar") {
		t.Fatal("the second row's task is not shadowed by the first")
	}
	if specs[2].destKey() == specs[0].destKey() || !specs[2].covers("org.foo.Bar") {
		t.Fatal("other servers must be another place")
	}
}

// Two rows naming the same servers with other credentials: every task on
// the place logs in as the lowest-id row (whichever task starts first must
// not pick the login of their shared client), the other is told so, and a
// changed password restarts the tasks (their fingerprint moves).
func TestResolveSamePlaceOneLogin(t *testing.T) {
	zks := []store.ZKCluster{{ID: 1, Name: "zk", ConnectString: "h1:2181", Root: "/dubbo"}}
	regs := []store.RegistryCluster{
		{ID: 11, Name: "reg-b", ServerList: []string{"r1:8848"}, Username: "bob", Password: "pw-b"},
		{ID: 10, Name: "reg-a", ServerList: []string{"R1:8848"}, Username: "ann", Password: "pw-a"},
	}
	tasks := []store.SyncTask{
		{ID: 1, SourceClusterID: 1, DestClusterID: 11, Scope: store.ScopeFull, State: store.TaskRunning},
		{ID: 2, SourceClusterID: 1, DestClusterID: 10, Scope: store.ScopeFull, State: store.TaskRunning},
	}
	specs, rejected := resolve(tasks, zks, regs)
	if len(specs) != 2 || len(rejected) != 0 {
		t.Fatalf("specs %v rejected %v", specs, rejected)
	}
	for _, s := range specs {
		if s.reg.Username != "ann" || s.reg.Password != "pw-a" {
			t.Fatalf("task %d logs in as %q, want reg-a's ann", s.task.ID, s.reg.Username)
		}
	}
	if specs[0].credsFrom == nil || specs[0].credsFrom.ID != 10 || specs[1].credsFrom != nil {
		t.Fatalf("credsFrom = %v, %v: want the reg-b task told it uses reg-a's login", specs[0].credsFrom, specs[1].credsFrom)
	}
	if strings.Contains(specs[0].fp, "pw-a") {
		t.Fatal("the fingerprint holds the password")
	}
	regs[1].Password = "pw-a2"
	again, _ := resolve(tasks, zks, regs)
	for i := range again {
		if again[i].fp == specs[i].fp {
			t.Fatalf("task %d: a changed password leaves the fingerprint as it was", specs[i].task.ID)
		}
	}
}
