package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/wire"
)

// benchChild is this binary run as a benchmark's server in a child process,
// so that its CPU is measured apart: it prints one greeting line, then
// answers each line written to it with one line, until its stdin closes.
type benchChild struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	hello string // the greeting line
	once  sync.Once
}

// startBenchChild runs `ferry args...` and reads its greeting.
func startBenchChild(ctx context.Context, args ...string) (*benchChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &benchChild{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if !c.out.Scan() {
		c.stop()
		return nil, fmt.Errorf("bench child %v did not start", args)
	}
	c.hello = c.out.Text()
	return c, nil
}

// ask writes one line and returns the child's answer.
func (c *benchChild) ask(line string) (string, error) {
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		return "", err
	}
	if !c.out.Scan() {
		return "", errors.New("bench child gone")
	}
	return c.out.Text(), nil
}

// stop closes the child's stdin and waits for it to end.
func (c *benchChild) stop() {
	c.once.Do(func() {
		c.in.Close()
		_ = c.cmd.Wait()
	})
}

// serveBenchLines answers each line of in with answer(line) on out.
func serveBenchLines(in io.Reader, out io.Writer, answer func(line string) string) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fmt.Fprintln(out, answer(sc.Text()))
	}
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
