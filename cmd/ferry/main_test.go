package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunDispatch(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{nil, 2, "usage: ferry"},
		{[]string{"help"}, 0, "commands:"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"version"}, 0, "ferry dev"},
		{[]string{"bench", "nope"}, 1, `unknown benchmark "nope"`},
		// Help must print help, never start every benchmark.
		{[]string{"bench", "all", "-h"}, 0, "usage: ferry bench NAME"},
		{[]string{"bench", "-h"}, 0, "benchmarks: client, config"},
		{[]string{"bench", "all", "extra"}, 1, "bench all takes no arguments"},
		{[]string{"bench", "all", "-duration", "1s"}, 1, "flag provided but not defined"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(tt.args, &out, &errOut)
		if code != tt.wantCode {
			t.Errorf("run(%q) = %d, want %d (stderr %q)", tt.args, code, tt.wantCode, errOut.String())
		}
		if got := out.String() + errOut.String(); !strings.Contains(got, tt.wantOut) {
			t.Errorf("run(%q) printed %q, want it to contain %q", tt.args, got, tt.wantOut)
		}
	}
}
