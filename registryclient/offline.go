package registryclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrRefused: a server answered an HTTP open-API call with a 4xx status
// (wrapped with the status and the server's message): retrying elsewhere
// would not help.
var ErrRefused = errors.New("registryclient: request refused")

// SetEnabledByIP calls a bundled Ferry registry's graceful offline, PUT
// /nacos/v1/ns/ferry/offline, in the client's namespace: enabled false
// disables every ephemeral and persistent instance at ip (port 0: every
// port) across all services of the namespace, true enables them again.
// It needs a global admin when the registry has auth on (the client's
// Username), and a loopback caller when auth is off. The servers of the
// list are tried in order until one answers 200; a 4xx answer is final
// (ErrRefused, with the server's message verbatim). A real Nacos has no
// such call (404: ErrRefused).
func (c *Client) SetEnabledByIP(ctx context.Context, ip string, port int, enabled bool) error {
	if strings.TrimSpace(ip) == "" {
		return fmt.Errorf("%w: empty ip", ErrInvalidInput)
	}
	q := url.Values{}
	q.Set("namespaceId", c.cfg.Namespace)
	q.Set("ip", ip)
	if port != 0 {
		q.Set("port", strconv.Itoa(port))
	}
	q.Set("enabled", strconv.FormatBool(enabled))
	var errs []error
	for _, s := range c.Servers() {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		start := time.Now()
		resp, err := c.httpDo(rctx, http.MethodPut, s.Addr(), "/nacos/v1/ns/ferry/offline", q) // auth.go: token, 403 re-login
		if errors.Is(err, ErrInvalidInput) {
			cancel()
			return err
		}
		c.m.latency.WithLabelValues("HTTPOffline").Observe(time.Since(start).Seconds())
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				cancel()
				c.m.requests.WithLabelValues("HTTPOffline", "ok").Inc()
				return nil
			case resp.StatusCode >= 400 && resp.StatusCode < 500:
				cancel()
				c.m.requests.WithLabelValues("HTTPOffline", "error").Inc()
				return fmt.Errorf("%w: %s: HTTP %d: %s", ErrRefused, s.Addr(), resp.StatusCode, strings.TrimSpace(string(body)))
			}
			err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		cancel()
		c.m.requests.WithLabelValues("HTTPOffline", "error").Inc()
		errs = append(errs, fmt.Errorf("%s: %w", s.Addr(), err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return ErrNoServer
	}
	return fmt.Errorf("%w: offline %s: %w", ErrNoServer, ip, errors.Join(errs...))
}
