package configsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HTTP open API (Nacos ConfigController and ConfigControllerV2):
//
//	GET|POST|DELETE /nacos/v1/cs/configs           dataId, group, tenant, content, type, casMd5
//	POST            /nacos/v1/cs/configs/listener  Listening-Configs, Long-Pulling-Timeout header
//	GET|POST|DELETE /nacos/v2/cs/config            dataId, group, namespaceId (or tenant), ...
//	POST            /nacos/v2/cs/config/listener   as v1
//
// v1 answers plain text ("true", the content, or the error's message); v2
// answers {code, message, data}. Errors: 400 bad parameter (nothing is
// stored), 404 no such config, 409 CAS md5 mismatch, 413 body too large,
// 500 store failure (e.g. not the Raft leader).

// v2 result codes (com.alibaba.nacos.api.model.v2.ErrorCode).
const (
	v2Success         = 0
	v2ParamValidate   = 20002
	v2NotFound        = 20004
	v2Conflict        = 20005
	v2ServerError     = 30000
	longPollNoHangup  = "Long-Pulling-No-Hangup"
	longPollTimeoutHd = "Long-Pulling-Timeout"
)

// Handler serves the config open API; mount it on "/nacos/v1/cs/" and
// "/nacos/v2/cs/".
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nacos/v1/cs/configs", s.v1(s.httpGet))
	mux.HandleFunc("POST /nacos/v1/cs/configs", s.v1(s.httpPublish))
	mux.HandleFunc("PUT /nacos/v1/cs/configs", s.v1(s.httpPublish))
	mux.HandleFunc("DELETE /nacos/v1/cs/configs", s.v1(s.httpRemove))
	mux.HandleFunc("POST /nacos/v1/cs/configs/listener", s.httpListener)
	mux.HandleFunc("GET /nacos/v2/cs/config", s.v2(s.httpGet))
	mux.HandleFunc("POST /nacos/v2/cs/config", s.v2(s.httpPublish))
	mux.HandleFunc("PUT /nacos/v2/cs/config", s.v2(s.httpPublish))
	mux.HandleFunc("DELETE /nacos/v2/cs/config", s.v2(s.httpRemove))
	mux.HandleFunc("POST /nacos/v2/cs/config/listener", s.httpListener)
	return mux
}

// op is one operation's result: data for v2, text for v1.
type op func(w http.ResponseWriter, r *http.Request) (data any, text string, err error)

// httpError is an error with its HTTP status and v2 code.
type httpError struct {
	status, code int
	err          error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func classify(err error) (status, code int) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.code
	case errors.Is(err, ErrInvalidParam):
		return http.StatusBadRequest, v2ParamValidate
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, v2NotFound
	case errors.Is(err, ErrCASMismatch):
		return http.StatusConflict, v2Conflict
	}
	return http.StatusInternalServerError, v2ServerError
}

// parse reads the query and form within a bound that fits the largest
// allowed content, URL-encoded.
func (s *Service) parse(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, int64(3*s.cfg.MaxContentBytes+64<<10))
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{status: http.StatusRequestEntityTooLarge, code: v2ParamValidate,
				err: fmt.Errorf("%w: %w: request body over %d bytes", ErrInvalidParam, ErrTooLarge, mbe.Limit)}
		}
		return &httpError{status: http.StatusBadRequest, code: v2ParamValidate, err: fmt.Errorf("%w: %v", ErrInvalidParam, err)}
	}
	return nil
}

func (s *Service) v1(f op) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.parse(w, r); err != nil {
			writeText(w, classifyStatus(err), err.Error())
			return
		}
		_, text, err := f(w, r)
		if err != nil {
			msg := err.Error()
			if errors.Is(err, ErrNotFound) {
				msg = "config data not exist"
			}
			writeText(w, classifyStatus(err), msg)
			return
		}
		writeText(w, http.StatusOK, text)
	}
}

func classifyStatus(err error) int { st, _ := classify(err); return st }

func (s *Service) v2(f op) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.parse(w, r); err != nil {
			writeV2(w, err, nil)
			return
		}
		data, _, err := f(w, r)
		writeV2(w, err, data)
	}
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func writeV2(w http.ResponseWriter, err error, data any) {
	type result struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    any    `json:"data"`
	}
	status, res := http.StatusOK, result{Code: v2Success, Message: "success", Data: data}
	if err != nil {
		status, res.Code = classify(err)
		res.Message, res.Data = err.Error(), nil
		if errors.Is(err, ErrNotFound) {
			res.Message = "config data not exist"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(res)
}

// keyFrom reads dataId, group and the tenant (v2: namespaceId first).
func keyFrom(r *http.Request) Key {
	t := r.Form.Get("namespaceId")
	if t == "" {
		t = r.Form.Get("tenant")
	}
	return Key{Tenant: t, Group: r.Form.Get("group"), DataID: r.Form.Get("dataId")}
}

func (s *Service) httpGet(w http.ResponseWriter, r *http.Request) (any, string, error) {
	it, err := s.Get(keyFrom(r))
	if err != nil {
		return nil, "", err
	}
	w.Header().Set("Config-Type", it.Type)
	w.Header().Set("Content-MD5", it.MD5)
	w.Header().Set("Last-Modified", time.UnixMilli(it.LastModified).UTC().Format(http.TimeFormat))
	return it.Content, it.Content, nil
}

func (s *Service) httpPublish(_ http.ResponseWriter, r *http.Request) (any, string, error) {
	cas := r.Form.Get("casMd5")
	if cas == "" {
		cas = r.Header.Get("casMd5")
	}
	if err := s.Publish(keyFrom(r), r.Form.Get("content"), r.Form.Get("type"), cas); err != nil {
		return nil, "", err
	}
	return true, "true", nil
}

func (s *Service) httpRemove(_ http.ResponseWriter, r *http.Request) (any, string, error) {
	if err := s.Remove(keyFrom(r)); err != nil {
		return nil, "", err
	}
	return true, "true", nil
}

// httpListener is the long-polling listener: it answers at once with the
// configs whose md5 differs, else holds the request up to
// Long-Pulling-Timeout (minus LongPollDelay, at most MaxLongPoll) and
// answers the first change, or an empty body when none came.
func (s *Service) httpListener(w http.ResponseWriter, r *http.Request) {
	if err := s.parse(w, r); err != nil {
		s.met.longPolls.WithLabelValues("invalid").Inc()
		writeText(w, classifyStatus(err), err.Error())
		return
	}
	ctxs, err := ParseListeningConfigs(r.Form.Get("Listening-Configs"))
	if err != nil {
		s.met.longPolls.WithLabelValues("invalid").Inc()
		writeText(w, http.StatusBadRequest, err.Error())
		return
	}
	var hold time.Duration
	if v := r.Header.Get(longPollTimeoutHd); v != "" {
		ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || ms < 0 {
			s.met.longPolls.WithLabelValues("invalid").Inc()
			writeText(w, http.StatusBadRequest, fmt.Sprintf("%v: %s %q is not a number of milliseconds", ErrInvalidParam, longPollTimeoutHd, v))
			return
		}
		hold = min(time.Duration(ms)*time.Millisecond-s.cfg.LongPollDelay, s.cfg.MaxLongPoll)
	}
	if strings.EqualFold(r.Header.Get(longPollNoHangup), "true") {
		hold = 0
	}
	changed := s.LongPoll(r.Context(), ctxs, hold)
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Cache-Control", "no-cache,no-store")
	writeText(w, http.StatusOK, EncodeChanged(changed))
}
