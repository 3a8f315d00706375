package zkwatch

import "sync"

// pathQueue is a coalescing work queue of znode paths to re-list. A path
// added while queued is queued once; a path added while a worker lists it is
// listed again after that listing, so no change is lost and no path is listed
// twice at the same time. add never blocks (it is called from the zk event
// callback).
type pathQueue struct {
	mu         sync.Mutex // guards all below
	cond       *sync.Cond
	items      []string
	dirty      map[string]struct{}
	processing map[string]struct{}
	closed     bool
}

func newPathQueue() *pathQueue {
	q := &pathQueue{dirty: map[string]struct{}{}, processing: map[string]struct{}{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *pathQueue) add(p string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if _, ok := q.dirty[p]; ok {
		return
	}
	q.dirty[p] = struct{}{}
	if _, ok := q.processing[p]; ok {
		return
	}
	q.items = append(q.items, p)
	q.cond.Signal()
}

// get blocks for the next path; ok is false once the queue is closed.
func (q *pathQueue) get() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", false
	}
	p := q.items[0]
	q.items[0] = ""
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = nil // let the backing array go
	}
	q.processing[p] = struct{}{}
	delete(q.dirty, p)
	return p, true
}

// done ends the listing of p; p is queued again if it was added meanwhile.
func (q *pathQueue) done(p string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, p)
	if _, ok := q.dirty[p]; ok && !q.closed {
		q.items = append(q.items, p)
		q.cond.Signal()
	}
}

// busy reports how many paths are queued or being listed.
func (q *pathQueue) busy() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.dirty) + len(q.processing)
}

func (q *pathQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// notifier turns per-service change marks into an unbuffered channel of names:
// a name marked again before it is delivered is delivered once. mark never
// blocks. A name is taken out of the pending set before it is sent, so a
// change made while the send waits is delivered again (never lost).
type notifier struct {
	mu      sync.Mutex // guards pending, order
	pending map[string]struct{}
	order   []string
	kick    chan struct{} // capacity 1
	out     chan string
}

func newNotifier() *notifier {
	return &notifier{pending: map[string]struct{}{}, kick: make(chan struct{}, 1), out: make(chan string)}
}

func (n *notifier) mark(name string) {
	n.mu.Lock()
	if _, ok := n.pending[name]; !ok {
		n.pending[name] = struct{}{}
		n.order = append(n.order, name)
	}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) pop() (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.order) == 0 {
		return "", false
	}
	name := n.order[0]
	n.order[0] = ""
	n.order = n.order[1:]
	if len(n.order) == 0 {
		n.order = nil
	}
	delete(n.pending, name)
	return name, true
}

// run feeds out until quit is closed; sent is called after each delivery.
func (n *notifier) run(quit <-chan struct{}, sent func()) {
	for {
		name, ok := n.pop()
		if !ok {
			select {
			case <-n.kick:
				continue
			case <-quit:
				return
			}
		}
		select {
		case n.out <- name:
			sent()
		case <-quit:
			return
		}
	}
}
