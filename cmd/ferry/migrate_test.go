package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrateCommand(t *testing.T) {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "sub", "dir", "ferry.db")
	steps := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"migrate", "-db", dsn, "status"}, 0, "pending"},
		{[]string{"migrate", "-db", dsn, "up"}, 0, "applied"},
		{[]string{"migrate", "-db", dsn, "up"}, 0, "applied"},
		{[]string{"migrate", "-db", dsn, "status"}, 0, "00003_worker_state.sql  applied"},
		{[]string{"migrate", "-db", dsn}, 1, "usage: ferry migrate"},
		{[]string{"migrate", "-db", "mysql://u:secret@tcp(127.0.0.1:1)/x", "up"}, 1, "mysql://u:***@tcp(127.0.0.1:1)/x"},
		{[]string{"migrate", "-db", "postgres://u:secret@h/x", "up"}, 1, `invalid DSN "postgres://u:***@h/x"`},
	}
	for _, s := range steps {
		var out, errOut bytes.Buffer
		code := run(s.args, &out, &errOut)
		got := out.String() + errOut.String()
		if code != s.wantCode || !strings.Contains(got, s.want) {
			t.Errorf("%q: code %d, output %q; want code %d containing %q", s.args, code, got, s.wantCode, s.want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("%q: password printed: %q", s.args, got)
		}
	}
}
