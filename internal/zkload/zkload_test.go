package zkload_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/ferrysync/ferry/zkwatch"
)

func TestValidate(t *testing.T) {
	c := zkload.DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Batch = 0
	if err := c.Validate(); !errors.Is(err, zkload.ErrInvalidConfig) || !strings.Contains(err.Error(), "Batch") {
		t.Fatalf("Validate = %v", err)
	}
}

func TestSeedAndChurn(t *testing.T) {
	srv := zkserver.ForTest(t)
	cfg := zkload.DefaultConfig()
	cfg.Servers = []string{srv.Addr()}
	cfg.Services, cfg.Instances, cfg.ServicesPerApp = 40, 5, 4
	cfg.WithNacosShare = 0.5
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := zkload.Connect(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := l.Seed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Services != 40 || st.Providers != 200 {
		t.Fatalf("stats %+v", st)
	}
	c := l.Conn()
	check := func() {
		t.Helper()
		withNacos := 0
		for i := 0; i < cfg.Services; i++ {
			kids, _, err := c.Children(l.ServicePath(i) + "/providers")
			if err != nil {
				t.Fatal(err)
			}
			if len(kids) != cfg.Instances {
				t.Fatalf("service %d has %d providers", i, len(kids))
			}
			addrs := map[string]bool{}
			for _, k := range kids {
				u, err := zkwatch.ParseProviderNode(k)
				if err != nil {
					t.Fatalf("node %s: %v", k, err)
				}
				if u.Interface() != l.Interface(i) || u.Application() != l.Application(i) || u.Timestamp() == 0 {
					t.Fatalf("bad URL %s", u)
				}
				addrs[u.Addr()] = true
				if u.Params["withNacos"] == "true" {
					withNacos++
				}
			}
			if len(addrs) != cfg.Instances {
				t.Fatalf("service %d: %d distinct addresses", i, len(addrs))
			}
		}
		if withNacos == 0 || withNacos == cfg.Services*cfg.Instances {
			t.Fatalf("withNacos on %d of %d", withNacos, cfg.Services*cfg.Instances)
		}
	}
	check()

	var created, deleted atomic.Int32
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- l.Churn(cctx, zkload.ChurnConfig{Rate: 200, RemoveAfter: 30 * time.Millisecond, OnWrite: func(w zkload.Write) {
			if w.Created {
				created.Add(1)
			} else {
				deleted.Add(1)
			}
		}})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for created.Load() < 50 || deleted.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("churn too slow: %d created, %d deleted", created.Load(), deleted.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ccancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if created.Load() != deleted.Load() {
		t.Fatalf("created %d, deleted %d after Churn returned", created.Load(), deleted.Load())
	}
	check() // one node per instance again
}
