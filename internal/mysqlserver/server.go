// Package mysqlserver runs a private MariaDB server from Debian's
// mariadb-server package: a fresh data directory (mariadb-install-db), one
// mariadbd process listening on a loopback port, and the DSNs to reach it.
// Tests use it through ForTest; benchmarks and tools through Start.
//
// A Server is safe for use by several goroutines. Stop is idempotent.
package mysqlserver

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// ErrNotInstalled is returned by Start when mariadbd or mariadb-install-db
// cannot be found.
var ErrNotInstalled = errors.New("mysqlserver: mariadbd or mariadb-install-db not installed")

// ErrStopped is returned by Restart after Stop.
var ErrStopped = errors.New("mysqlserver: server stopped")

// Config says where and how the server runs. The zero value is not valid;
// start from DefaultConfig.
type Config struct {
	// Dir holds the data directory, socket and error log. Empty: a new
	// temporary directory, removed by Stop.
	Dir string
	// Port is the TCP port on 127.0.0.1. 0 picks a free one.
	Port int
	// Database is created at start (utf8mb4) and named by DSN.
	Database string
	// BufferPoolSize is innodb_buffer_pool_size, e.g. "32M": kept small so
	// several servers fit on a test machine.
	BufferPoolSize string
	// StartTimeout bounds install + start until the server accepts connections.
	StartTimeout time.Duration
	// StopTimeout bounds the graceful shutdown before the process is killed.
	StopTimeout time.Duration
	// Logger receives lifecycle lines; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a config for a small throw-away server.
func DefaultConfig() Config {
	return Config{
		Database:       "ferry",
		BufferPoolSize: "32M",
		StartTimeout:   60 * time.Second,
		StopTimeout:    15 * time.Second,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("mysqlserver: invalid Config.Port %d", c.Port)
	case c.Database == "" || strings.ContainsAny(c.Database, "`'\" ;/\\"):
		return fmt.Errorf("mysqlserver: invalid Config.Database %q", c.Database)
	case c.BufferPoolSize == "":
		return errors.New("mysqlserver: invalid Config.BufferPoolSize: empty")
	case c.StartTimeout <= 0:
		return fmt.Errorf("mysqlserver: invalid Config.StartTimeout %v", c.StartTimeout)
	case c.StopTimeout <= 0:
		return fmt.Errorf("mysqlserver: invalid Config.StopTimeout %v", c.StopTimeout)
	}
	return nil
}

// Server is one running mariadbd.
type Server struct {
	cfg      Config
	log      *slog.Logger
	mariadbd string
	tempDir  bool // Dir was created by Start and is removed by Stop
	dataDir  string

	mu      sync.Mutex // guards the fields below
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	stopped bool
}

// Binaries returns the paths of mariadbd and mariadb-install-db, or
// ErrNotInstalled.
func Binaries() (mariadbd, installDB string, err error) {
	mariadbd = lookPath("mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld")
	installDB = lookPath("mariadb-install-db", "/usr/bin/mariadb-install-db", "mysql_install_db", "/usr/bin/mysql_install_db")
	if mariadbd == "" || installDB == "" {
		return "", "", ErrNotInstalled
	}
	return mariadbd, installDB, nil
}

func lookPath(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// Start installs a fresh data directory (unless Dir already holds one),
// starts mariadbd and waits until it accepts connections and the database
// exists. It does not leave a process behind on error.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mariadbd, installDB, err := Binaries()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mariadbd: mariadbd}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.cfg.Dir == "" {
		d, err := os.MkdirTemp("", "mysqlserver-")
		if err != nil {
			return nil, fmt.Errorf("mysqlserver: temp dir: %w", err)
		}
		s.cfg.Dir, s.tempDir = d, true
	}
	s.dataDir = filepath.Join(s.cfg.Dir, "data")
	// A private tmpdir: a starting mariadbd removes the "#sql*" files it
	// finds in its tmpdir, other servers' temporary tables included, which
	// breaks concurrent installs sharing /tmp.
	if err := os.MkdirAll(filepath.Join(s.cfg.Dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("mysqlserver: tmpdir: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()

	fail := func(err error) (*Server, error) {
		_ = s.Stop()
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "mysql")); err != nil {
		if err := s.install(ctx, installDB); err != nil {
			return fail(err)
		}
	}
	// A port picked free may be taken before mariadbd binds it: retry with another.
	fixed := s.cfg.Port != 0
	for attempt := 0; ; attempt++ {
		if !fixed {
			if s.cfg.Port, err = freePort(); err != nil {
				return fail(err)
			}
		}
		err = s.launch(ctx)
		if err == nil {
			break
		}
		if fixed || attempt >= 2 || !strings.Contains(err.Error(), "Bind on TCP/IP port") {
			return fail(err)
		}
	}
	if err := s.exec(ctx, "", "CREATE DATABASE IF NOT EXISTS `"+s.cfg.Database+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return fail(err)
	}
	s.log.Info("mariadb started", "port", s.cfg.Port, "dir", s.cfg.Dir)
	return s, nil
}

// commonArgs keep the server small and quick; durability is relaxed because
// the data is throw-away.
func (s *Server) commonArgs() []string {
	args := []string{
		"--no-defaults",
		"--datadir=" + s.dataDir,
		"--tmpdir=" + filepath.Join(s.cfg.Dir, "tmp"),
		"--innodb-buffer-pool-size=" + s.cfg.BufferPoolSize,
		"--innodb-log-file-size=8M",
		"--innodb-flush-log-at-trx-commit=2",
		"--skip-name-resolve",
		"--performance-schema=OFF",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	return args
}

func (s *Server) install(ctx context.Context, installDB string) error {
	args := append(s.commonArgs(), "--auth-root-authentication-method=normal", "--skip-test-db")
	args[0] = "--no-defaults" // must stay first for mariadb-install-db
	cmd := exec.CommandContext(ctx, installDB, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mysqlserver: %s: %w: %s", filepath.Base(installDB), err, tail(out.String(), 1500))
	}
	return nil
}

func (s *Server) errorLog() string { return filepath.Join(s.cfg.Dir, "error.log") }

// launch starts the mariadbd process and waits for it to accept connections.
func (s *Server) launch(ctx context.Context) error {
	logPath := s.errorLog()
	logOffset := int64(0)
	if fi, err := os.Stat(logPath); err == nil {
		logOffset = fi.Size()
	}
	args := append(s.commonArgs(),
		"--socket="+filepath.Join(s.cfg.Dir, "s.sock"),
		"--port="+strconv.Itoa(s.cfg.Port),
		"--bind-address=127.0.0.1",
		"--pid-file="+filepath.Join(s.cfg.Dir, "mariadbd.pid"),
		"--log-error="+logPath,
		"--skip-log-bin",
		"--max-connections=300",
	)
	cmd := exec.Command(s.mariadbd, args...)
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mysqlserver: start mariadbd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		if int64(len(b)) >= logOffset {
			b = b[logOffset:]
		}
		return tail(string(b), 1500)
	}
	db, err := sql.Open("mysql", s.rootDSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("mysqlserver: mariadbd exited during start: %s", logTail())
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("mysqlserver: mariadbd not ready on port %d: %w (last error %v): %s", s.cfg.Port, ctx.Err(), err, logTail())
		case <-tick.C:
		}
	}
}

func (s *Server) exec(ctx context.Context, database, query string) error {
	db, err := sql.Open("mysql", s.rootDSN(database))
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, query); err != nil {
		return fmt.Errorf("mysqlserver: %s: %w", query, err)
	}
	return nil
}

func (s *Server) rootDSN(database string) string {
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "tcp"
	c.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.Port))
	c.DBName = database
	c.ParseTime = true
	c.Timeout = 2 * time.Second
	return c.FormatDSN()
}

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.cfg.Port }

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.Port)) }

// DSN is the Ferry store DSN of the configured database:
// mysql://root@tcp(127.0.0.1:PORT)/ferry?parseTime=true
func (s *Server) DSN() string { return s.DatabaseDSN(s.cfg.Database) }

// DatabaseDSN is the Ferry store DSN of another database on this server.
func (s *Server) DatabaseDSN(database string) string {
	return "mysql://root@tcp(" + s.Addr() + ")/" + database + "?parseTime=true"
}

// CreateDatabase creates (if missing) a database and returns its Ferry DSN.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "`'\" ;/\\") {
		return "", fmt.Errorf("mysqlserver: invalid database name %q", name)
	}
	if err := s.exec(ctx, "", "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return "", err
	}
	return s.DatabaseDSN(name), nil
}

// Restart stops the server gracefully and starts it again on the same port
// and data directory.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return ErrStopped
	}
	s.shutdown()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	if err := s.launch(ctx); err != nil {
		return err
	}
	s.log.Info("mariadb restarted", "port", s.cfg.Port)
	return nil
}

// Kill stops the server abruptly (SIGKILL), as a crash would; Restart brings
// it back.
func (s *Server) Kill() {
	s.kill()
}

// Pause freezes the server (SIGSTOP): connections stay open and every
// statement hangs, as a failover, a long lock or a full disk looks to a
// client. Resume (SIGCONT) lets it go on; Kill, Restart and Stop resume a
// paused server first.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		return ErrStopped
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("mysqlserver: %v: %w", sig, err)
	}
	return nil
}

func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-exited
}

// shutdown sends SIGTERM and waits up to StopTimeout, then kills.
func (s *Server) shutdown() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot shut down
	_ = cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(s.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		s.log.Warn("mariadb did not stop in time, killing", "port", s.cfg.Port)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Stop shuts the server down (graceful, then killed after StopTimeout) and
// removes its directory if Start created it. It is idempotent.
func (s *Server) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	s.shutdown()
	if s.tempDir {
		return os.RemoveAll(s.cfg.Dir)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("mysqlserver: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}
