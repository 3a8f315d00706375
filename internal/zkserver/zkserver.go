// Package zkserver runs a private, standalone ZooKeeper server from Debian's
// zookeeper package (a java process), for tests, benchmarks and `ferry demo`.
//
// The server binds 127.0.0.1 on a free (or given) port, keeps its data and
// its log file in Config.Dir, and can be stopped and restarted on the same
// port with the same data. Its tick is short (Config.TickTime, 100 ms by
// default) and the minimum session timeout is two ticks, so tests that need
// a session to expire are quick.
package zkserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Default locations of Debian's zookeeper package.
const (
	DefaultJar     = "/usr/share/java/zookeeper.jar"
	DefaultConfDir = "/etc/zookeeper/conf"
)

// Errors returned by this package.
var (
	// ErrUnavailable: java or the ZooKeeper jar is missing.
	ErrUnavailable = errors.New("zkserver: zookeeper not available")
	// ErrNotReady: the server did not answer `srvr` with Mode: standalone in time.
	ErrNotReady = errors.New("zkserver: server not ready")
	// ErrStopped: the server was stopped for good.
	ErrStopped = errors.New("zkserver: stopped")
)

// Config says where and how to run the server.
type Config struct {
	// Dir holds zoo.cfg, the data directory and zookeeper.log. Required.
	Dir string
	// Port on 127.0.0.1; 0 picks a free one (kept across Restart).
	Port int
	// TickTime is ZooKeeper's tick; minSessionTimeout is 2 ticks. Default 100ms.
	TickTime time.Duration
	// MaxSessionTimeout caps the session timeout clients may ask for. Default 60s.
	MaxSessionTimeout time.Duration
	// StartTimeout bounds Start and Restart. Default 30s.
	StartTimeout time.Duration
	// Java is the java binary. Default "java" (from PATH).
	Java string
	// Jar is ZooKeeper's jar. Default DefaultJar.
	Jar string
	// ConfDir goes first on the class path (log4j config). Default DefaultConfDir.
	ConfDir string
	// Logger receives lifecycle messages. Default: discard.
	Logger *slog.Logger
	// ForceSync makes ZooKeeper fsync its transaction log on every commit,
	// as production servers do. Off by default: tests and the demo do not
	// need durability across a machine crash, and fsync dominates write
	// throughput on a shared disk (seeding 30k nodes: ~7s with, ~2.5s without).
	ForceSync bool
}

// DefaultConfig returns a Config with every default filled in but Dir.
func DefaultConfig() Config {
	return Config{
		TickTime:          100 * time.Millisecond,
		MaxSessionTimeout: 60 * time.Second,
		StartTimeout:      30 * time.Second,
		Java:              "java",
		Jar:               DefaultJar,
		ConfDir:           DefaultConfDir,
	}
}

func (c *Config) fillDefaults() {
	d := DefaultConfig()
	if c.TickTime == 0 {
		c.TickTime = d.TickTime
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = d.MaxSessionTimeout
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = d.StartTimeout
	}
	if c.Java == "" {
		c.Java = d.Java
	}
	if c.Jar == "" {
		c.Jar = d.Jar
	}
	if c.ConfDir == "" {
		c.ConfDir = d.ConfDir
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("zkserver: Config.Dir is required")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("zkserver: Config.Port %d out of range", c.Port)
	case c.TickTime < time.Millisecond:
		return fmt.Errorf("zkserver: Config.TickTime %v too small", c.TickTime)
	case c.MaxSessionTimeout < 2*c.TickTime:
		return fmt.Errorf("zkserver: Config.MaxSessionTimeout %v below 2 ticks", c.MaxSessionTimeout)
	case c.StartTimeout <= 0:
		return fmt.Errorf("zkserver: Config.StartTimeout %v must be positive", c.StartTimeout)
	}
	return nil
}

// Available reports what is missing to run a server (nil when nothing is).
func Available() error {
	return available(DefaultConfig())
}

func available(c Config) error {
	var missing []string
	if _, err := exec.LookPath(c.Java); err != nil {
		missing = append(missing, "java ("+c.Java+")")
	}
	if _, err := os.Stat(c.Jar); err != nil {
		missing = append(missing, c.Jar)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s (apt-get install zookeeper)", ErrUnavailable, strings.Join(missing, ", "))
	}
	return nil
}

// Server is one running (or stopped) ZooKeeper. Its methods are safe for
// concurrent use; Stop, Restart and Close serialise on one mutex.
type Server struct {
	cfg Config

	mu      sync.Mutex // guards cmd, done, stopped
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	stopped bool          // Close was called
}

// Start writes zoo.cfg into cfg.Dir, starts the server and waits until it
// answers `srvr` with Mode: standalone.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := available(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("zkserver: %w", err)
	}
	if cfg.Port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("zkserver: free port: %w", err)
		}
		cfg.Port = p
	}
	s := &Server{cfg: cfg}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is "127.0.0.1:port", the client address.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.cfg.Port) }

// Port is the client port.
func (s *Server) Port() int { return s.cfg.Port }

// Dir is the server's directory (config, data, zookeeper.log).
func (s *Server) Dir() string { return s.cfg.Dir }

// LogFile is the path of the java process's output.
func (s *Server) LogFile() string { return filepath.Join(s.cfg.Dir, "zookeeper.log") }

func (s *Server) writeConfig() error {
	tick := s.cfg.TickTime.Milliseconds()
	cfg := fmt.Sprintf(`# written by ferry's zkserver
tickTime=%d
minSessionTimeout=%d
maxSessionTimeout=%d
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr,stat,ruok,mntr,cons,dump
maxClientCnxns=0
autopurge.purgeInterval=0
forceSync=%s
`, tick, 2*tick, s.cfg.MaxSessionTimeout.Milliseconds(), filepath.Join(s.cfg.Dir, "data"), s.cfg.Port, yesNo(s.cfg.ForceSync))
	if err := os.WriteFile(filepath.Join(s.cfg.Dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("zkserver: %w", err)
	}
	return nil
}

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.cmd != nil {
		return nil // already running
	}
	logf, err := os.OpenFile(s.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("zkserver: %w", err)
	}
	cmd := exec.Command(s.cfg.Java,
		"-Xms64m", "-Xmx1g", "-XX:+UseSerialGC",
		"-Dzookeeper.jmx.log4j.disable=true",
		"-Xlog:gc:file="+filepath.Join(s.cfg.Dir, "gc.log"),
		"-cp", s.cfg.ConfDir+":"+s.cfg.Jar,
		"org.apache.zookeeper.server.ZooKeeperServerMain",
		filepath.Join(s.cfg.Dir, "zoo.cfg"))
	cmd.Dir = s.cfg.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("zkserver: start java: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	s.cfg.Logger.Info("zookeeper starting", "addr", s.Addr(), "pid", cmd.Process.Pid, "dir", s.cfg.Dir)

	wctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	for {
		mode, err := FourLetter(wctx, s.Addr(), "srvr")
		if err == nil && strings.Contains(mode, "Mode: standalone") {
			s.cfg.Logger.Info("zookeeper ready", "addr", s.Addr())
			return nil
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("%w: java exited early, see %s: %s", ErrNotReady, s.LogFile(), s.tailLog())
		case <-wctx.Done():
			s.killLocked()
			return fmt.Errorf("%w: %v (log %s)", ErrNotReady, wctx.Err(), s.LogFile())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) tailLog() string {
	b, err := os.ReadFile(s.LogFile())
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// killLocked kills the process group and waits for the process. s.mu held.
func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd, s.done = nil, nil
	s.cfg.Logger.Info("zookeeper stopped", "addr", s.Addr(), "pid", pid)
}

// Kill9 kills the server with SIGKILL (a crash) and waits for it to exit.
// The server can be started again with Restart.
func (s *Server) Kill9() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd, s.done = nil, nil
	return nil
}

// Stop stops the java process (SIGTERM to its process group, SIGKILL after
// 10s) and waits for it. The server can be started again with Restart. Stop
// on a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
	return nil
}

// Restart stops the server if it runs and starts it again on the same port
// with the same data.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx)
}

// Running reports whether the java process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Pid is the java process's id, 0 when it is not running (benchmarks read
// its CPU and memory from /proc).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Close stops the server for good (idempotent).
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
	s.stopped = true
	return nil
}

// FourLetter sends a ZooKeeper four-letter word (srvr, ruok, mntr...) to addr
// and returns the answer.
func FourLetter(ctx context.Context, addr, word string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	deadline := time.Now().Add(2 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetDeadline(deadline)
	if _, err := io.WriteString(c, word); err != nil {
		return "", err
	}
	var sb strings.Builder
	r := bufio.NewReader(c)
	if _, err := io.Copy(&sb, r); err != nil {
		return sb.String(), err
	}
	return sb.String(), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
