package registryclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/wire"
)

// Login toward a registry with auth on, as nacos-sdk-go v2.3.5 does it
// (common/security/nacos_auth_client.go): POST
// /nacos/v1/auth/users/login with username and password (form), read
// accessToken and tokenTtl (seconds) from the JSON answer, send the token
// as the "accessToken" header of every gRPC request and the accessToken
// parameter of HTTP calls, and log in again once 80% of the TTL has passed
// (the SDK's ttl - 2*ttl/10). On top of the SDK, a request refused with
// 403 (NO_RIGHT: token expired early, key rotated, user re-created) makes
// the client log in again and retry that request once.

// ErrLogin: the login call failed (wrapped with the server's answer; never
// the password).
var ErrLogin = errors.New("registryclient: login failed")

// loginState is the client's login state, shared by every session (a
// token is valid on every node of a cluster, which share the key).
type loginState struct {
	user, pass string

	loginMu sync.Mutex // serialises logins

	mu        sync.Mutex // guards the fields below
	token     string
	refreshAt time.Time // log in again after this
	expires   time.Time // the token is useless after this
	retryAt   time.Time // after a failed login, not before this
}

func newLoginState(cfg Config) *loginState {
	if cfg.Username == "" {
		return nil
	}
	return &loginState{user: cfg.Username, pass: cfg.Password}
}

// current returns the token and whether it is due for renewal.
func (cr *loginState) current(now time.Time) (tok string, due, usable bool) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	usable = cr.token != "" && now.Before(cr.expires)
	due = cr.token == "" || !now.Before(cr.refreshAt)
	if due && now.Before(cr.retryAt) {
		due = false // a login failed a moment ago: do not hammer the server
	}
	return cr.token, due, usable
}

// invalidate forces a new login before tok is used again (a 403 on it).
func (cr *loginState) invalidate(tok string) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.token == tok {
		cr.refreshAt = time.Time{}
		cr.retryAt = time.Time{}
	}
}

// accessToken returns the token to send to srv ("" without loginState or
// while no login has succeeded), logging in first when the token is due.
// A renewal in progress elsewhere does not block a caller whose token is
// still usable.
func (c *Client) accessToken(ctx context.Context, srv Server) string {
	cr := c.creds
	if cr == nil {
		return ""
	}
	tok, due, usable := cr.current(time.Now())
	if !due {
		return tok
	}
	if usable {
		if !cr.loginMu.TryLock() {
			return tok
		}
	} else {
		cr.loginMu.Lock()
	}
	defer cr.loginMu.Unlock()
	if tok2, due, _ := cr.current(time.Now()); !due {
		return tok2 // another caller logged in meanwhile
	}
	newTok, ttl, err := c.login(ctx, srv)
	now := time.Now()
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if err != nil {
		cr.retryAt = now.Add(c.cfg.ReconnectMax)
		c.m.logins.WithLabelValues("error").Inc()
		c.log.Warn("registry login failed", "server", srv.Addr(), "user", cr.user, "err", err)
		if now.Before(cr.expires) {
			return cr.token
		}
		return ""
	}
	c.m.logins.WithLabelValues("ok").Inc()
	cr.token, cr.expires = newTok, now.Add(ttl)
	cr.refreshAt = now.Add(ttl - 2*(ttl/10))
	cr.retryAt = time.Time{}
	return newTok
}

// login calls srv's login endpoint and returns the token and its TTL.
func (c *Client) login(ctx context.Context, srv Server) (string, time.Duration, error) {
	cr := c.creds
	form := url.Values{"username": {cr.user}, "password": {cr.pass}}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.cfg.scheme()+srv.Addr()+"/nacos/v1/auth/users/login", strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrLogin, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s: %v", ErrLogin, srv.Addr(), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("%w: %s: HTTP %d: %.200s", ErrLogin, srv.Addr(), resp.StatusCode, body)
	}
	var ans struct {
		AccessToken string `json:"accessToken"`
		TokenTTL    int64  `json:"tokenTtl"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.AccessToken == "" {
		return "", 0, fmt.Errorf("%w: %s: answer without accessToken", ErrLogin, srv.Addr())
	}
	ttl := time.Duration(ans.TokenTTL) * time.Second
	if ttl <= 0 {
		ttl = 18000 * time.Second // Nacos' default
	}
	return ans.AccessToken, ttl, nil
}

func setToken(req wire.Request, tok string) {
	h := req.Header()
	if tok == "" {
		delete(h.Headers, "accessToken")
		return
	}
	if h.Headers == nil {
		h.Headers = map[string]string{}
	}
	h.Headers["accessToken"] = tok
}

// callOn is callOnce with the access token: a 403 answer makes the client
// log in again and retry once with the new token.
func (c *Client) callOn(ctx context.Context, s *session, req wire.Request) (wire.Response, error) {
	if c.creds == nil {
		return c.callOnce(ctx, s, req)
	}
	tok := c.accessToken(ctx, s.srv)
	setToken(req, tok)
	resp, err := c.callOnce(ctx, s, req)
	if !errors.Is(err, ErrNoRight) {
		return resp, err
	}
	c.creds.invalidate(tok)
	tok2 := c.accessToken(ctx, s.srv)
	if tok2 == "" || tok2 == tok {
		return resp, err
	}
	setToken(req, tok2)
	return c.callOnce(ctx, s, req)
}

// httpDo sends an HTTP open-API call to target ("host:port") with the
// access token, retrying once after a re-login on 403.
func (c *Client) httpDo(ctx context.Context, method, target, path string, q url.Values) (*http.Response, error) {
	srv, err := ParseServer(target)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	send := func(tok string) (*http.Response, error) {
		qq := q
		if tok != "" {
			qq = url.Values{}
			for k, v := range q {
				qq[k] = v
			}
			qq.Set("accessToken", tok)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.cfg.scheme()+target+path+"?"+qq.Encode(), nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
		}
		return c.http.Do(req)
	}
	tok := c.accessToken(ctx, srv)
	resp, err := send(tok)
	if err != nil || resp.StatusCode != http.StatusForbidden || c.creds == nil {
		return resp, err
	}
	c.creds.invalidate(tok)
	tok2 := c.accessToken(ctx, srv)
	if tok2 == "" || tok2 == tok {
		return resp, nil
	}
	resp.Body.Close()
	return send(tok2)
}
