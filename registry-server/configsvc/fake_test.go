package configsvc

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testlog"
)

// memStore is an in-memory Store with the Raft FSM's semantics (CAS,
// same-content no-op, history), telling its watcher synchronously.
type memStore struct {
	mu    sync.Mutex
	items map[Key]Item
	watch func(Key)
	puts  int
	err   error // returned by every write when set
}

func newMemStore() *memStore { return &memStore{items: map[Key]Item{}} }

func (m *memStore) PutConfig(k Key, content, typ string, lastModified int64, checkCAS bool, casMD5 string, historyMax int) error {
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return m.err
	}
	old, ok := m.items[k]
	if checkCAS && ok && old.MD5 != casMD5 {
		m.mu.Unlock()
		return ErrCASMismatch
	}
	md5 := MD5(content)
	if ok && old.MD5 == md5 && old.Type == typ {
		m.mu.Unlock()
		return nil
	}
	it := Item{Key: k, Content: content, MD5: md5, Type: typ, LastModified: lastModified}
	if ok && historyMax > 0 {
		it.History = append([]Version{{Content: old.Content, MD5: old.MD5, Type: old.Type, LastModified: old.LastModified}}, old.History...)
		if len(it.History) > historyMax {
			it.History = it.History[:historyMax]
		}
	}
	m.items[k] = it
	m.puts++
	w := m.watch
	m.mu.Unlock()
	if w != nil {
		w(k)
	}
	return nil
}

func (m *memStore) RemoveConfig(k Key) error {
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return m.err
	}
	_, ok := m.items[k]
	delete(m.items, k)
	w := m.watch
	m.mu.Unlock()
	if ok && w != nil {
		w(k)
	}
	return nil
}

func (m *memStore) Config(k Key) (Item, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[k]
	return it, ok
}

func (m *memStore) ConfigMD5(k Key) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.items[k].MD5
}

func (m *memStore) ConfigCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

func (m *memStore) SetConfigWatcher(w func(Key)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watch = w
}

func testLogger(t testing.TB) *slog.Logger {
	return testlog.New(t, slog.LevelDebug)
}

func newTestService(t testing.TB, st Store, mod func(*Config)) *Service {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, st, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}
