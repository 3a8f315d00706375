// Package benchchild runs a benchmark's server as a child process, so that
// its CPU and memory are measured apart from the load generator's: the child
// prints one greeting line on stdout, then answers each line written to its
// stdin with one line, until its stdin closes or it is sent SIGTERM.
package benchchild

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ErrGone is returned by Ask when the child has ended.
var ErrGone = errors.New("benchchild: child gone")

// stopGrace bounds how long Stop waits for the child after closing its
// stdin and sending SIGTERM, before it kills it.
const stopGrace = 15 * time.Second

// Child is one running child. Ask may be called from one goroutine at a
// time; Stop from any, any number of times.
type Child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	Hello string // the greeting line
	once  sync.Once
	done  chan struct{} // closed when the child has exited
}

// Start runs exe with args, its stderr on this process's, and reads its
// greeting line.
func Start(ctx context.Context, exe string, args ...string) (*Child, error) {
	return StartEnv(ctx, nil, exe, args...)
}

// StartEnv is Start with the child's environment (nil: this process's).
func StartEnv(ctx context.Context, env []string, exe string, args ...string) (*Child, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	// The child dies with us, even when we are killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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
	c := &Child{cmd: cmd, in: in, out: bufio.NewScanner(out), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	if !c.out.Scan() {
		c.Stop()
		return nil, fmt.Errorf("benchchild: %s %v did not start", exe, args)
	}
	c.Hello = c.out.Text()
	return c, nil
}

// Self starts this program's own executable with args.
func Self(ctx context.Context, args ...string) (*Child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return Start(ctx, exe, args...)
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Ask writes one line and returns the child's answer.
func (c *Child) Ask(line string) (string, error) {
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		return "", err
	}
	if !c.out.Scan() {
		return "", ErrGone
	}
	return c.out.Text(), nil
}

// Stop closes the child's stdin, sends it SIGTERM and waits for it to end,
// killing it after stopGrace.
func (c *Child) Stop() {
	c.once.Do(func() {
		c.in.Close()
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(stopGrace):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
}

// Serve answers each line of in with answer(line) on out, until in ends:
// the child's side of the protocol.
func Serve(in io.Reader, out io.Writer, answer func(line string) string) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fmt.Fprintln(out, answer(sc.Text()))
	}
}
