package inventory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
)

// Renewal is an operator's request (`certfleet renew`) to reissue one
// certificate. It names the serial that was current when asked: the pass
// that finds that serial delivered reissues it, and a request whose serial
// is no longer current has been met — whatever the clocks say, and however
// often a pass is interrupted, it causes exactly one reissue.
type Renewal struct {
	ID     string    `json:"id"`
	Serial string    `json:"serial"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// renewalPrefix keeps one document per request, so two operators asking at
// once never overwrite each other, and a pass with none costs one List.
const renewalPrefix = "renewals/"

func renewalKey(id string) string { return renewalPrefix + strings.ReplaceAll(id, "/", "_") }

// RequestRenewal records r in the backend's store.
func RequestRenewal(ctx context.Context, s backend.Store, r Renewal) error {
	return s.Put(ctx, renewalKey(r.ID), r)
}

// Renewals reads the pending requests by certificate ID. Requests met
// already (their serial is not the one inv records now, or inv no longer
// has the certificate) are left out, and deleted unless dryRun.
func Renewals(ctx context.Context, s backend.Store, inv map[string]*Entry, dryRun bool) (map[string]Renewal, error) {
	return RenewalsOf(ctx, s, inv, dryRun, nil)
}

// RenewalsOf is Renewals for one shard: inv holds the shard's entries, and
// a request for a certificate mine reports false (another shard's) is
// neither returned nor deleted; its shard meets it. Nil mine: all are mine.
func RenewalsOf(ctx context.Context, s backend.Store, inv map[string]*Entry, dryRun bool, mine func(id string) bool) (map[string]Renewal, error) {
	keys, err := s.List(ctx, renewalPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing renewal requests: %w", err)
	}
	out := map[string]Renewal{}
	for _, k := range keys {
		var r Renewal
		if err := s.Get(ctx, renewalPrefix+k, &r); err != nil {
			if errors.Is(err, backend.ErrNotFound) {
				continue // met and deleted by another pass meanwhile
			}
			return nil, fmt.Errorf("reading renewal request %s: %w", k, err)
		}
		if mine != nil && !mine(r.ID) {
			continue
		}
		if e := inv[r.ID]; e != nil && e.Serial == r.Serial {
			out[r.ID] = r
			continue
		}
		if !dryRun {
			if err := backend.Purge(ctx, s, renewalPrefix+k); err != nil {
				return nil, fmt.Errorf("deleting the met renewal request %s: %w", k, err)
			}
		}
	}
	return out, nil
}
