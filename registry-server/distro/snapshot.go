package distro

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// SnapshotChunkSize is how many clients one snapshot chunk carries.
const SnapshotChunkSize = 1000

// SnapshotChunk is one page of a member's clients, in id order: its own
// (Owner names the member) and its copies of the others'.
type SnapshotChunk struct {
	Clients []naming.ClientData `json:",omitempty"`
	// Next is the id to continue after; "" when this was the last chunk.
	Next string `json:",omitempty"`
}

// Snapshot returns up to limit clients with an id after after (the
// cluster route a starting member pages through).
func (r *Runner) Snapshot(after string, limit int) SnapshotChunk {
	if limit <= 0 {
		limit = SnapshotChunkSize
	}
	revs := r.reg.ClientRevisions() // sorted by id
	i := sort.Search(len(revs), func(i int) bool { return revs[i].ID > after })
	var out SnapshotChunk
	for ; i < len(revs) && len(out.Clients) < limit; i++ {
		cd, ok := r.reg.Client(revs[i].ID)
		if !ok {
			continue // removed meanwhile
		}
		if cd.Owner == "" {
			cd.Owner = r.self
		}
		out.Clients = append(out.Clients, cd)
	}
	if i < len(revs) && len(out.Clients) > 0 {
		out.Next = out.Clients[len(out.Clients)-1].ID
	}
	return out
}

// FetchFunc asks peer for the snapshot chunk after after.
type FetchFunc func(ctx context.Context, peer, after string) (SnapshotChunk, error)

// ErrNoSnapshot: no peer answered a whole snapshot.
var ErrNoSnapshot = errors.New("distro: no peer answered a snapshot")

// Load fills this member from one peer's snapshot, chunk by chunk, before
// it serves: the peers are tried in order until one answers every chunk.
// Copies of other members' clients go through the engine as if their
// owners had synced them (so it adopts those that hash here, and the next
// verify repairs any copy that changed meanwhile); beat-kept clients this
// member owned before a restart are taken back the same way; connection
// clients it owned went with their connections and are skipped. It
// returns how many clients were loaded and from which peer.
func (r *Runner) Load(ctx context.Context, peers []string, fetch FetchFunc) (int, string, error) {
	var errs []error
	for _, peer := range peers {
		if peer == r.self {
			continue
		}
		n, err := r.loadFrom(ctx, peer, fetch)
		if err == nil {
			return n, peer, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", peer, err))
		if ctx.Err() != nil {
			break
		}
	}
	return 0, "", fmt.Errorf("%w: %w", ErrNoSnapshot, errors.Join(errs...))
}

func (r *Runner) loadFrom(ctx context.Context, peer string, fetch FetchFunc) (int, error) {
	after, n := "", 0
	for {
		chunk, err := fetch(ctx, peer, after)
		if err != nil {
			return n, err
		}
		byOwner := map[string][]naming.ClientData{}
		for _, cd := range chunk.Clients {
			if cd.Owner == r.self && beatTag(cd.ID) == "" {
				continue // our connection client: its connection is gone
			}
			byOwner[cd.Owner] = append(byOwner[cd.Owner], cd)
		}
		owners := make([]string, 0, len(byOwner))
		for o := range byOwner {
			owners = append(owners, o)
		}
		sort.Strings(owners)
		for _, o := range owners {
			r.Receive(o, Message{Kind: MsgSync, Clients: byOwner[o]})
			n += len(byOwner[o])
		}
		if chunk.Next == "" {
			return n, nil
		}
		if chunk.Next <= after {
			return n, fmt.Errorf("distro: snapshot chunk does not advance (after %q, next %q)", after, chunk.Next)
		}
		after = chunk.Next
	}
}
