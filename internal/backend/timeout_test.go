package backend_test

import (
	"context"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/testbed"
)

func TestAHungVaultFailsTheCallInsteadOfHangingIt(t *testing.T) {
	addr := testbed.HungServer(t)
	v, err := backend.OpenVault(context.Background(), backend.VaultConfig{Address: "http://" + addr, Token: "t",
		CatalogMount: "certfleet", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var got struct{}
	err = v.Get(context.Background(), "Issuer/web", &got)
	if err == nil {
		t.Fatal("a read from a server that never answers succeeded")
	}
	// Four tries (three retries) of 300 ms and their backoff: well under 10 s.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the call took %s", d)
	}
}
