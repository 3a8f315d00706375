package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/go-zookeeper/zk"
)

func TestZKLoadPersistentSeedsAndExits(t *testing.T) {
	srv := zkserver.ForTest(t)
	var out, errOut bytes.Buffer
	code := run([]string{"zkload", "-zk", srv.Addr(), "-zk-root", "seeded", "-persistent", "-services", "6", "-instances", "3"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "seeded 6 services, 18 persistent providers under /seeded") {
		t.Fatalf("output %q", out.String())
	}
	c, ev, err := zk.Connect([]string{srv.Addr()}, 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		for range ev {
		}
	}()
	kids, _, err := c.Children("/seeded")
	if err != nil || len(kids) != 6 {
		t.Fatalf("children %v %v", kids, err)
	}
	provs, _, err := c.Children("/seeded/" + kids[0] + "/providers")
	if err != nil || len(provs) != 3 || !strings.Contains(provs[0], "dynamic%3Dfalse") {
		t.Fatalf("providers %v %v", provs, err)
	}
}

func TestZKLoadBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"zkload", "-batch", "0"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "Batch") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}
