package naming

import "sync"

// Snapshot is the immutable state of one service that queries, subscriptions
// and pushes are answered from: its merged instances (overrides applied,
// sorted) and its operator metadata, as they were when the snapshot was
// built.
//
// Freshness rule: the Registry builds a snapshot lazily and drops it (in
// service.invalidate, the one place) on every change to anything a
// snapshot is made of. A later Select therefore sees a new Snapshot, and
// everything derived from the old one is gone with it. A Snapshot is never
// modified after publication, so whatever is derived from it by a pure
// function (a filtered host list, an encoded JSON body) can be memoised on
// it with Memo and stays exactly as current as the snapshot itself: there is
// no separate revision to keep in step.
type Snapshot struct {
	insts []Instance   // merged, overrides applied, sorted; never modified
	meta  *ServiceMeta // the service's metadata when built (nil: none)

	mu   sync.Mutex // guards memo
	memo map[string]any
}

// MaxMemo bounds the values memoised on one snapshot. Keys usually come
// from request parameters (a clusters filter): past the bound, Memo builds
// the value every time instead of keeping it, so a client cannot grow a
// snapshot without limit.
const MaxMemo = 16

// Memo returns the value memoised under key, building it with build the
// first time. build must be a pure function of the snapshot's content and
// of what key encodes (two callers using one key must build equal values);
// it runs outside the lock and may run more than once under contention
// (the first stored value wins). A nil Snapshot (an unknown service)
// memoises nothing. The returned value is shared: don't modify it.
func (s *Snapshot) Memo(key string, build func() any) any {
	if s == nil {
		return build()
	}
	s.mu.Lock()
	v, ok := s.memo[key]
	s.mu.Unlock()
	if ok {
		return v
	}
	v = build()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.memo[key]; ok {
		return old
	}
	if len(s.memo) < MaxMemo {
		if s.memo == nil {
			s.memo = make(map[string]any, 4)
		}
		s.memo[key] = v
	}
	return v
}
