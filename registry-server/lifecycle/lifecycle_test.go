package lifecycle

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.log = append(r.log, s); r.mu.Unlock() }
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.log
	r.log = nil
	return out
}

type fake struct {
	name     string
	rec      *recorder
	startErr error
	block    bool // Stop waits for ctx
	stops    int
}

func (f *fake) Start() error {
	f.rec.add("start " + f.name)
	return f.startErr
}

func (f *fake) Stop(ctx context.Context) error {
	f.stops++
	f.rec.add("stop " + f.name)
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func TestOrder(t *testing.T) {
	rec := &recorder{}
	var g Group
	// Added out of tier order on purpose: the tier decides.
	g.Add(Listener, "http", &fake{name: "http", rec: rec})
	g.Add(Service, "expiry", &fake{name: "expiry", rec: rec})
	g.Add(Storage, "raft", &fake{name: "raft", rec: rec})
	g.Add(Listener, "grpc", &fake{name: "grpc", rec: rec})
	g.Add(Service, "prober", &fake{name: "prober", rec: rec})
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Fatalf("second start: %v", err)
	}
	want := []string{"start raft", "start expiry", "start prober", "start http", "start grpc"}
	if got := rec.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("start order %v, want %v", got, want)
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want = []string{"stop grpc", "stop http", "stop prober", "stop expiry", "stop raft"}
	if got := rec.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("stop order %v, want %v", got, want)
	}
	if err := g.Stop(context.Background()); err != nil || len(rec.take()) != 0 {
		t.Fatalf("second stop: %v (must do nothing)", err)
	}
	if err := g.Start(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("start after stop: %v", err)
	}
}

func TestStartFailureStopsWhatStarted(t *testing.T) {
	rec := &recorder{}
	var g Group
	boom := errors.New("port in use")
	never := &fake{name: "grpc", rec: rec}
	g.Add(Storage, "raft", &fake{name: "raft", rec: rec})
	g.Add(Service, "expiry", &fake{name: "expiry", rec: rec})
	g.Add(Listener, "http", &fake{name: "http", rec: rec, startErr: boom})
	g.Add(Listener, "grpc", never)
	err := g.Start(context.Background())
	if !errors.Is(err, boom) || err.Error() == boom.Error() {
		t.Fatalf("start error %v must wrap the cause and name the part", err)
	}
	want := []string{"start raft", "start expiry", "start http", "stop expiry", "stop raft"}
	if got := rec.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if err := g.Stop(context.Background()); err != nil || never.stops != 0 || len(rec.take()) != 0 {
		t.Fatalf("stop after a failed start: %v", err)
	}
}

// TestStopBounded: a part that does not stop by the deadline makes Stop
// return by then with its error, and the parts after it are still stopped.
func TestStopBounded(t *testing.T) {
	rec := &recorder{}
	var g Group
	storage := &fake{name: "raft", rec: rec}
	g.Add(Storage, "raft", storage)
	g.Add(Service, "stuck", &fake{name: "stuck", rec: rec, block: true})
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := g.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %v", d)
	}
	if storage.stops != 1 {
		t.Fatal("storage not stopped after a stuck service")
	}
	if g.Stop(context.Background()) == nil {
		t.Fatal("a later Stop must return the first result")
	}
}

func TestBounded(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := Bounded(ctx, func() error { <-release; return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("bounded: %v", err)
	}
	want := errors.New("x")
	if err := Bounded(context.Background(), func() error { return want }); err != want {
		t.Fatalf("bounded: %v", err)
	}
}

func TestStopWithoutStartStopsStorage(t *testing.T) {
	rec := &recorder{}
	var g Group
	g.Add(Storage, "raft", &fake{name: "raft", rec: rec})
	g.Add(Listener, "http", &fake{name: "http", rec: rec})
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); !reflect.DeepEqual(got, []string{"stop raft"}) {
		t.Fatalf("got %v", got)
	}
}
