package inventory_test

import (
	"context"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/inventory"
)

// TestRolloutStateSurvivesAReopen: the state written by one process is read
// by the next, and an ended rollout leaves nothing behind.
func TestRolloutStateSurvivesAReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := backend.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := inventory.LoadRollout(ctx, b); err != nil || st.Active() {
		t.Fatalf("a new backend's rollout state is %+v (%v), want none", st, err)
	}
	at := time.Date(2030, 1, 1, 14, 0, 0, 0, time.UTC)
	want := inventory.RolloutState{Waves: map[string]inventory.WaveState{"staging": {StartedAt: at, LastIssuedAt: at, FinishedAt: &at}}}
	if err := inventory.SaveRollout(ctx, b, want); err != nil {
		t.Fatal(err)
	}
	b2, err := backend.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := inventory.LoadRollout(ctx, b2)
	if err != nil || !got.Equal(want) {
		t.Fatalf("read back %+v (%v), want %+v", got, err, want)
	}
	if err := inventory.SaveRollout(ctx, b2, inventory.RolloutState{}); err != nil {
		t.Fatal(err)
	}
	if keys, err := b2.List(ctx, "rollout/"); err != nil || len(keys) != 0 {
		t.Fatalf("after the rollout ended the backend holds %v (%v), want nothing", keys, err)
	}
	if err := inventory.SaveRollout(ctx, b2, inventory.RolloutState{}); err != nil {
		t.Fatalf("ending an ended rollout: %v", err)
	}
}
