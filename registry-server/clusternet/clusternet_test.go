package clusternet

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRefusals: the server answers members of its list that speak its
// version, and refuses the others saying who and why; handler errors keep
// their status.
func TestRefusals(t *testing.T) {
	s := NewServer("10.0.0.1:8848", "127.0.0.1:0", []string{"10.0.0.1:8848", "10.0.0.2:8848"})
	s.Handle("/echo", func(_ context.Context, from string, body []byte) (any, error) {
		if string(body) == `"fail"` {
			return nil, &StatusError{Status: http.StatusConflict, Err: errors.New("no")}
		}
		return map[string]string{"from": from}, nil
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	ctx := context.Background()
	addr := s.Addr().String()

	var out map[string]string
	member := NewClient("10.0.0.2:8848", time.Second)
	if err := member.CallVia(ctx, addr, "/echo", "hi", &out); err != nil || out["from"] != "10.0.0.2:8848" {
		t.Fatalf("member: %v %v", out, err)
	}
	var se *StatusError
	if err := member.CallVia(ctx, addr, "/echo", "fail", nil); !errors.As(err, &se) || se.Status != http.StatusConflict || !errors.Is(err, ErrRemote) {
		t.Fatalf("handler error: %v", err)
	}
	if err := NewClient("10.0.0.9:8848", time.Second).CallVia(ctx, addr, "/echo", "hi", nil); !errors.Is(err, ErrNotMember) || !strings.Contains(err.Error(), "10.0.0.9:8848") {
		t.Fatalf("non-member: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/echo", strings.NewReader(`"hi"`))
	req.Header.Set(HeaderFrom, "10.0.0.2:8848")
	req.Header.Set(HeaderVersion, "ferry-cluster/0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(HeaderRefused) != "version" {
		t.Fatalf("other version: %d %v", resp.StatusCode, resp.Header)
	}
	if got, _ := ClusterPort("10.0.0.1:8848"); got != "10.0.0.1:9849" {
		t.Fatal(got)
	}
}
