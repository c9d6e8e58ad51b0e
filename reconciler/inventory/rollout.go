package inventory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
)

// RolloutState is what a rollout of mass reissues (schemas.Rollout)
// remembers between passes: when each of its waves started, last reissued
// something and finished. It is kept in the backend beside the inventory,
// so a restarted daemon neither restarts the first wave nor forgets a soak.
// It cannot be derived from the inventory: an entry's UpdatedAt also moves
// for a renewal or a copy, which would end or extend a soak wrongly. Empty
// when no rollout is under way. Failures are not kept here: they are the
// inventory's own (Entry.Attempts), so a certificate that succeeds again
// stops counting.
type RolloutState struct {
	Waves map[string]WaveState `json:"waves,omitempty"`
}

// WaveState is one wave's progress.
type WaveState struct {
	// StartedAt is the pass that first reissued one of its certificates.
	StartedAt time.Time `json:"startedAt"`
	// LastIssuedAt is the last pass that reissued one of them.
	LastIssuedAt time.Time `json:"lastIssuedAt"`
	// FinishedAt is set once none is left to reissue: its LastIssuedAt,
	// from which the soak runs.
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// Active reports whether a rollout is under way.
func (s RolloutState) Active() bool { return len(s.Waves) > 0 }

// Equal reports whether two states are the same.
func (s RolloutState) Equal(o RolloutState) bool {
	return maps.EqualFunc(s.Waves, o.Waves, func(a, b WaveState) bool {
		return a.StartedAt.Equal(b.StartedAt) && a.LastIssuedAt.Equal(b.LastIssuedAt) &&
			(a.FinishedAt == nil) == (b.FinishedAt == nil) && (a.FinishedAt == nil || a.FinishedAt.Equal(*b.FinishedAt))
	})
}

// RolloutKey is the rollout state of shard ("": the unsharded process),
// one document each: one acting pass at a time writes it (the pass holds
// its shard's backend lock). Each shard sends its own share out in the
// catalog's waves, as it acts on its share only.
func RolloutKey(shard string) string { return PerShard("rollout/state", shard) }

// LoadRollout reads shard's rollout state (empty when none is under way).
func LoadRollout(ctx context.Context, s backend.Store, shard string) (RolloutState, error) {
	var st RolloutState
	if err := s.Get(ctx, RolloutKey(shard), &st); err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			return RolloutState{}, nil
		}
		return st, fmt.Errorf("reading the rollout state: %w", err)
	}
	return st, nil
}

// SaveRollout writes the rollout state; an empty one (the rollout is over)
// is deleted, so the next mass reissue starts again at the first wave.
func SaveRollout(ctx context.Context, s backend.Store, shard string, st RolloutState) error {
	if !st.Active() {
		if err := backend.Purge(ctx, s, RolloutKey(shard)); err != nil && !errors.Is(err, backend.ErrNotFound) {
			return fmt.Errorf("deleting the finished rollout's state: %w", err)
		}
		return nil
	}
	if err := s.Put(ctx, RolloutKey(shard), st); err != nil {
		return fmt.Errorf("recording the rollout state: %w", err)
	}
	return nil
}
