package raftstore

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// FuzzFSMApply: any log entry either applies (nil or a domain error) or
// panics with the FSM's own "raftstore:" undecodable-entry panic; never an
// accidental panic (nil map, index out of range) from a decodable entry.
func FuzzFSMApply(f *testing.F) {
	for typ, body := range map[byte]any{
		cmdPutInstance:    putInstanceCmd{Key: svcA, Instance: pinst("10.0.0.1", 80)},
		cmdRemoveInstance: addrCmd{Key: svcA, Addr: naming.Addr{IP: "10.0.0.1", Port: 80}},
		cmdPutOverride:    putOverrideCmd{Key: svcA, Override: naming.Override{Addr: naming.Addr{IP: "10.0.0.1", Port: 80}, Enabled: ptr(false)}},
		cmdRemoveOverride: addrCmd{Key: svcA, Addr: naming.Addr{IP: "10.0.0.1", Port: 80}},
		cmdSetEnabledByIP: setEnabledByIPCmd{Namespace: "public", IP: "10.0.0.1", Targets: []Target{{Key: svcB, Addr: naming.Addr{IP: "10.0.0.1", Port: 1}}}},
		cmdPutServiceMeta: putServiceMetaCmd{Key: svcB, Meta: naming.ServiceMeta{ProtectThreshold: 0.5}},
		cmdRemoveService:  serviceCmd{Key: svcB},
	} {
		b, err := encode(typ, body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{cmdPutInstance, 'n', 'u', 'l', 'l'})
	addAuthSeeds(f) // auth_test.go
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := newFSM(newFakeApplier(), nil)
		// Some state for removals and offline to work on.
		seed, _ := encode(cmdPutInstance, putInstanceCmd{Key: svcA, Instance: pinst("10.0.0.1", 80)})
		fsm.Apply(&raft.Log{Type: raft.LogCommand, Data: seed})
		func() {
			defer func() {
				if r := recover(); r != nil && !strings.HasPrefix(fmt.Sprint(r), "raftstore: ") {
					t.Fatalf("unexpected panic: %v", r)
				}
			}()
			fsm.Apply(&raft.Log{Type: raft.LogCommand, Data: data})
		}()
		// The state still snapshots and reads.
		if _, err := fsm.Snapshot(); err != nil {
			t.Fatal(err)
		}
		_ = fsm.allInstances()
	})
}
