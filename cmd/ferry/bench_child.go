package main

import (
	"context"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/benchchild"
	"github.com/ferrysync/ferry/wire"
)

// benchChild is this binary run as a benchmark's server in a child process
// (internal/benchchild): one greeting line, then one answer per line.
type benchChild struct {
	*benchchild.Child
	hello string // the greeting line
}

// startBenchChild runs `ferry args...` and reads its greeting.
func startBenchChild(ctx context.Context, args ...string) (*benchChild, error) {
	c, err := benchchild.Self(ctx, args...)
	if err != nil {
		return nil, err
	}
	return &benchChild{Child: c, hello: c.Hello}, nil
}

// ask writes one line and returns the child's answer.
func (c *benchChild) ask(line string) (string, error) { return c.Ask(line) }

// stop ends the child and waits for it.
func (c *benchChild) stop() { c.Stop() }

// serveBenchLines answers each line of in with answer(line) on out.
func serveBenchLines(in io.Reader, out io.Writer, answer func(line string) string) {
	benchchild.Serve(in, out, answer)
}

// beatCounts reads a registry node's merged-beat counters: instance-beats
// and FerryBatchBeatRequests served.
func beatCounts(prom prometheus.Gatherer) (beats, rpcs int64) {
	var b, r float64
	mfs, _ := prom.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "ferry_registry_batch_beats_total":
				b += m.GetCounter().GetValue()
			case "ferry_registry_grpc_requests_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "type" && l.GetValue() == wire.TypeFerryBatchBeatRequest {
						r += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return int64(b), int64(r)
}
