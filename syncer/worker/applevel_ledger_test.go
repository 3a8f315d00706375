package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/syncer"
)

// configReader reads configs of the bundled registry as Dubbo's
// NacosMetadataReport does; "<none>" when one does not exist.
func configReader(ctx context.Context, t *testing.T, regAddr string) (*registryclient.Client, func(group, dataID string) string) {
	t.Helper()
	ccfg := registryclient.DefaultConfig()
	ccfg.Servers = []string{regAddr}
	c, err := registryclient.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, func(group, dataID string) string {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		content, found, err := c.GetConfig(qctx, registryclient.ConfigRef{Group: group, DataID: dataID})
		switch {
		case err != nil:
			return "error: " + err.Error()
		case !found:
			return "<none>"
		}
		return content
	}
}

func mkdirs(t *testing.T, conn *zk.Conn, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			t.Fatal(err)
		}
	}
}

// TestWorkerMappingLedgerAcrossRestart: the apps a worker wrote into a
// mapping config stay its own after a restart (through the ledger, group
// ferry.mapping): an app dropped from ZooKeeper's node while no worker ran
// is taken out of the config by the next one, an app only Nacos knows
// stays, and nothing is written twice.
func TestWorkerMappingLedgerAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, stk := newStack(ctx, t, 1, 1, 0)
	conn := stk.loader.Conn()
	c, get := configReader(ctx, t, stk.regAddr)
	const iface = "org.apache.dubbo.demo.PayService"
	if err := c.PublishConfig(ctx, registryclient.ConfigRef{Group: syncer.MappingGroup, DataID: iface}, "native-app"); err != nil {
		t.Fatal(err)
	}
	mkdirs(t, conn, "/dubbo/mapping")
	node := "/dubbo/mapping/" + iface
	if _, err := conn.Create(node, []byte("pay-a,pay-b"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	wcfg := stk.workerConfig(t, "")
	w, err := Start(ctx, wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the merged mapping and its ledger", 60*time.Second, func() bool {
		return get(syncer.MappingGroup, iface) == "native-app,pay-a,pay-b" && get(syncer.LedgerMappingGroup, iface) == "pay-a,pay-b"
	})
	w.Stop(context.Background())
	// While no worker runs, pay-b leaves ZooKeeper's node.
	if _, err := conn.Set(node, []byte("pay-a"), -1); err != nil {
		t.Fatal(err)
	}
	w, err = Start(ctx, wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	waitFor(t, "pay-b taken out by the next worker", 60*time.Second, func() bool {
		return get(syncer.MappingGroup, iface) == "native-app,pay-a" && get(syncer.LedgerMappingGroup, iface) == "pay-a"
	})
	// The node goes: the native app stays, the ledger goes.
	if err := conn.Delete(node, -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "only the native app left", 30*time.Second, func() bool {
		return get(syncer.MappingGroup, iface) == "native-app" && get(syncer.LedgerMappingGroup, iface) == "<none>"
	})
}

// TestWorkerRetireRemovesFerrysConfigs: narrowing a task so that it no
// longer covers an application and an interface deregisters the
// application's instances and takes out of the config service exactly what
// Ferry wrote: its app in the mapping (the native app stays), the
// metadata revision it copied (a revision it did not copy stays), and the
// ledgers.
func TestWorkerRetireRemovesFerrysConfigs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, stk := newStack(ctx, t, 1, 1, 0)
	conn := stk.loader.Conn()
	c, get := configReader(ctx, t, stk.regAddr)
	const app, rev, nativeRev = "order-service", "5c1d0f3e0e1a6b7c8d9e0f1a2b3c4d5e", "0000000000000000000000000000aaaa"
	const iface = "org.example.OrderService"
	info := `{"app":"order-service","revision":"` + rev + `","services":{}}`
	mkdirs(t, conn, "/services", "/services/"+app, "/dubbo/metadata", "/dubbo/metadata/"+app, "/dubbo/mapping")
	if _, err := conn.Create("/dubbo/metadata/"+app+"/"+rev, []byte(info), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Create("/dubbo/mapping/"+iface, []byte(app), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	data := strings.Replace(string(javaAppNode(app, "127.0.0.21", 50051, rev, time.Now().UnixMilli())),
		`"dubbo.metadata.storage-type":"local"`, `"dubbo.metadata.storage-type":"remote"`, 1)
	if _, err := conn.Create("/services/"+app+"/127.0.0.21:50051", []byte(data), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	// What others wrote: a native app's mapping, another revision's metadata.
	if err := c.PublishConfig(ctx, registryclient.ConfigRef{Group: syncer.MappingGroup, DataID: iface}, "native-app"); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishConfig(ctx, registryclient.ConfigRef{Group: nativeRev, DataID: app}, `{"app":"order-service"}`); err != nil {
		t.Fatal(err)
	}
	wcfg := stk.workerConfig(t, "")
	wcfg.TaskPoll = 200 * time.Millisecond
	w, err := Start(ctx, wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	hosts := func() int {
		info, err := c.Query(ctx, registryclient.ServiceRef{Namespace: "public", Group: "DEFAULT_GROUP", Name: app}, "", true)
		if err != nil {
			return -1
		}
		return len(info.Hosts)
	}
	waitFor(t, "instance, metadata, mapping and ledgers", 60*time.Second, func() bool {
		return hosts() == 1 && get(rev, app) == info && get(syncer.LedgerMetadataGroup, app) == rev &&
			get(syncer.MappingGroup, iface) == "native-app,"+app && get(syncer.LedgerMappingGroup, iface) == app
	})
	// Narrow the task to an interface that does not exist.
	tasks, err := w.st.ListTasks(ctx, store.TaskFilter{})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("tasks = %v, %v", tasks, err)
	}
	tasks[0].Include = []string{"org.example.Nothing"}
	if err := w.st.UpdateTask(ctx, &tasks[0], "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Ferry's configs gone, the others left", 60*time.Second, func() bool {
		return hosts() == 0 && get(rev, app) == "<none>" && get(syncer.LedgerMetadataGroup, app) == "<none>" &&
			get(syncer.MappingGroup, iface) == "native-app" && get(syncer.LedgerMappingGroup, iface) == "<none>"
	})
	if got := get(nativeRev, app); got != `{"app":"order-service"}` {
		t.Fatalf("a revision Ferry did not copy: %q", got)
	}
}

// TestWorkerRemovesUnusedMetadata: once no instance names a revision Ferry
// copied, its config goes after MetadataGrace; the revision in use stays.
func TestWorkerRemovesUnusedMetadata(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, stk := newStack(ctx, t, 1, 1, 0)
	conn := stk.loader.Conn()
	_, get := configReader(ctx, t, stk.regAddr)
	const app = "stock-service"
	revs := []string{"11111111111111111111111111111111", "22222222222222222222222222222222"}
	mkdirs(t, conn, "/services", "/services/"+app, "/dubbo/metadata", "/dubbo/metadata/"+app)
	infos := map[string]string{}
	for _, r := range revs {
		infos[r] = `{"app":"` + app + `","revision":"` + r + `","services":{}}`
		if _, err := conn.Create("/dubbo/metadata/"+app+"/"+r, []byte(infos[r]), 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	nodeData := func(r string) []byte {
		return []byte(strings.Replace(string(javaAppNode(app, "127.0.0.31", 50051, r, time.Now().UnixMilli())),
			`"dubbo.metadata.storage-type":"local"`, `"dubbo.metadata.storage-type":"remote"`, 1))
	}
	node := "/services/" + app + "/127.0.0.31:50051"
	if _, err := conn.Create(node, nodeData(revs[0]), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	wcfg := stk.workerConfig(t, "")
	wcfg.Engine.MetadataGrace = time.Second
	w, err := Start(ctx, wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	waitFor(t, "the first revision copied", 60*time.Second, func() bool {
		return get(revs[0], app) == infos[revs[0]] && get(syncer.LedgerMetadataGroup, app) == revs[0]
	})
	// The provider restarts with another revision.
	if _, err := conn.Set(node, nodeData(revs[1]), -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old revision removed after its grace", 60*time.Second, func() bool {
		return get(revs[0], app) == "<none>" && get(syncer.LedgerMetadataGroup, app) == revs[1]
	})
	if got := get(revs[1], app); got != infos[revs[1]] {
		t.Fatalf("the revision in use: %q", got)
	}
}
