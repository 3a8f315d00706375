package worker

import (
	"context"
	"testing"
	"time"
)

// TestWorkerRootChangeDeregistersOldRoot: the task's ZooKeeper cluster is
// edited to another root. The old root's services that the new root does
// not have are deregistered at once (not left to expire unbeaten after the
// registry's 30 s); a service both roots have stays registered throughout.
func TestWorkerRootChangeDeregistersOldRoot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lcfg, stk := newStack(ctx, t, 3, 2, 0)
	loader, regAddr := stk.loader, stk.regAddr
	// Root "dubbo2": the same first service only (same interface and hosts).
	lcfg2 := lcfg
	lcfg2.Root, lcfg2.Services = "dubbo2", 1
	seedZK(ctx, t, lcfg2)
	wcfg := stk.workerConfig(t, "")
	wcfg.TaskPoll = 200 * time.Millisecond
	w, err := Start(ctx, wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	count := func(i int) int { return len(hosts(t, regAddr, nacosName(loader.Interface(i)))) }
	waitFor(t, "root dubbo synced", 60*time.Second, func() bool { return count(0) == 2 && count(1) == 2 && count(2) == 2 })

	zks, err := w.st.ListZKClusters(ctx)
	if err != nil || len(zks) != 1 {
		t.Fatalf("zk clusters %v, %v", zks, err)
	}
	zc := zks[0]
	zc.Root = "/dubbo2"
	if err := w.st.UpdateZKCluster(ctx, &zc); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	w.Reload()
	deadline := time.Now().Add(10 * time.Second) // well before the 15 s unhealthy and 30 s delete timeouts
	for count(1) != 0 || count(2) != 0 {
		if n := count(0); n != 2 {
			t.Fatalf("the service both roots have went down to %d instances", n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("old root's services still registered %v after the root change: %d, %d", time.Since(changed), count(1), count(2))
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
	t.Logf("old root's services deregistered %v after the root change", time.Since(changed).Round(time.Millisecond))
	waitFor(t, "the new root's service synced", 90*time.Second, func() bool { return count(0) == 2 })
}
