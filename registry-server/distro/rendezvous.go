// Package distro is Ferry's Distro: the AP replication of ephemeral
// clients between registry cluster members. This file is responsibility:
// which member owns a beat-kept client.
package distro

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"sync/atomic"
)

// weight is the rendezvous weight of tag on member: the first 8 bytes
// (big endian) of SHA-256(member + "#" + tag). It is part of the cluster
// protocol: every version must compute the same (golden vectors pin it).
func weight(member, tag string) uint64 {
	h := sha256.New()
	h.Write([]byte(member))
	h.Write([]byte{'#'})
	h.Write([]byte(tag))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// Responsible picks the member responsible for tag (a beat-kept client's
// "ip:port") among members by rendezvous (highest random weight) hashing:
// when a member leaves or joins, only the tags it wins or loses move
// (about 1/N of them). Ties go to the smaller address. "" when members is
// empty. members need not be sorted.
func Responsible(tag string, members []string) string {
	best, bestW := "", uint64(0)
	for _, m := range members {
		w := weight(m, tag)
		if best == "" || w > bestW || (w == bestW && m < best) {
			best, bestW = m, w
		}
	}
	return best
}

// Tag is a beat-kept client's responsibility tag, "ip:port" (Nacos'
// DistroIpPortTagGenerator).
func Tag(ip string, port int) string { return ip + ":" + strconv.Itoa(port) }

// Mapper answers naming.Responsibility from the current serving members
// (UP and SUSPICIOUS), published as an immutable slice: Set replaces it,
// Responsible reads it without locks.
type Mapper struct {
	self    string
	serving atomic.Pointer[[]string]
}

// NewMapper starts with members serving.
func NewMapper(self string, members []string) *Mapper {
	m := &Mapper{self: self}
	m.Set(members)
	return m
}

// Set publishes the serving members.
func (m *Mapper) Set(serving []string) {
	s := append([]string(nil), serving...)
	m.serving.Store(&s)
}

// Owner is the member responsible for tag ("" when none serves).
func (m *Mapper) Owner(tag string) string { return Responsible(tag, *m.serving.Load()) }

// Responsible is naming.Responsibility: "" when this node is responsible
// for the beat-kept client at ip:port (or no member serves), else the
// responsible member's address.
func (m *Mapper) Responsible(ip string, port int) string {
	o := m.Owner(Tag(ip, port))
	if o == m.self {
		return ""
	}
	return o
}
