package zkwatchbench

import (
	"context"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/zkserver"
)

func TestRunSmall(t *testing.T) {
	srv := zkserver.ForTest(t)
	res, err := Run(context.Background(), Options{
		Servers: []string{srv.Addr()}, Services: 30, Instances: 3,
		ChurnRate: 40, ChurnFor: time.Second, RemoveAfter: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if res.Providers != 90 || res.ColdStart <= 0 || res.Writes < 20 || res.Missed != 0 || res.P50 <= 0 {
		t.Fatalf("result %+v", res)
	}
}
