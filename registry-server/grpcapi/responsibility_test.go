package grpcapi

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// byIP is a Responsibility that gives some ips to other members.
type byIP map[string]string

func (m byIP) Responsible(ip string, _ int) string { return m[ip] }

// TestBatchBeatRedirects: merged beats and bulk deregisters of addresses
// another member is responsible for are answered redirect with its
// address and never touch this node's registry; the others are served.
func TestBatchBeatRedirects(t *testing.T) {
	reg := naming.NewRegistry(naming.DefaultConfig(), nil)
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg, reg, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.SetResponsibility(byIP{"10.0.0.2": "10.1.0.2:8848"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
	c := dialRaw(t, s.Addr().String(), true)
	a := wire.BeatItem{ServiceName: "providers:a", Instance: winst("10.0.0.1", 20880)}
	b := wire.BeatItem{ServiceName: "providers:a", Instance: winst("10.0.0.2", 20880)}
	r := c.mustCall(&wire.FerryBatchBeatRequest{RegisterIfUnknown: true, Beats: []wire.BeatItem{a, b}}).(*wire.FerryBatchBeatResponse)
	if len(r.Results) != 2 || r.Results[0].Status != wire.BeatOK ||
		r.Results[1].Status != wire.BeatRedirect || r.Results[1].Redirect != "10.1.0.2:8848" {
		t.Fatalf("items: %+v", r.Results)
	}
	r = c.mustCall(&wire.FerryBatchBeatRequest{
		Groups: []wire.BeatGroup{{ServiceName: "providers:a", Addrs: []string{"10.0.0.1:20880", "10.0.0.2:20880"}}}}).(*wire.FerryBatchBeatResponse)
	if len(r.Exceptions) != 1 || r.Exceptions[0].Index != 1 || r.Exceptions[0].Status != wire.BeatRedirect || r.Exceptions[0].Redirect != "10.1.0.2:8848" {
		t.Fatalf("groups: %+v", r.Exceptions)
	}
	if si, _ := reg.Select(naming.ServiceKey{Name: "providers:a"}, nil, false); len(si.Hosts) != 1 || si.Hosts[0].IP != "10.0.0.1" {
		t.Fatalf("registered here: %+v", si.Hosts)
	}
	d := c.mustCall(&wire.FerryBatchDeregisterRequest{Groups: []wire.BeatGroup{{ServiceName: "providers:a",
		Addrs: []string{"10.0.0.2:20880", "10.0.0.1:20880"}}}}).(*wire.FerryBatchDeregisterResponse)
	if len(d.Exceptions) != 1 || d.Exceptions[0].Index != 0 || d.Exceptions[0].Status != wire.BeatRedirect || d.Exceptions[0].Redirect != "10.1.0.2:8848" {
		t.Fatalf("deregister: %+v", d)
	}
	if si, _ := reg.Select(naming.ServiceKey{Name: "providers:a"}, nil, false); len(si.Hosts) != 0 {
		t.Fatalf("not deregistered: %+v", si.Hosts)
	}
}
