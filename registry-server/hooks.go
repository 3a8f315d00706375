package registryserver

import (
	"github.com/ferrysync/ferry/registry-server/health"
	"github.com/ferrysync/ferry/registry-server/httpapi"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
)

// The naming core is what the Raft store applies into, what the prober
// reports to and what the HTTP API reads: checked at compile time here,
// where all of them meet. (The HTTP API's Beater has a narrower Beat; the
// wiring adapts Registry.Beat to it.)
var (
	_ raftstore.Applier = (*naming.Registry)(nil)
	_ health.Reporter   = (*naming.Registry)(nil)
	_ httpapi.Naming    = (*naming.Registry)(nil)
)
