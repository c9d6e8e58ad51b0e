package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/inventory"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want inventory.FailureKind
	}{
		{name: "no error is no failure", err: nil, want: ""},
		{name: "a role that refuses is permanent", err: fmt.Errorf("signing: %w", pki.ErrNotAllowed), want: inventory.Permanent},
		{name: "an issuer that is gone is permanent", err: fmt.Errorf("issuer: %w", backend.ErrNotFound), want: inventory.Permanent},
		{name: "a timeout is transient", err: context.DeadlineExceeded, want: inventory.Transient},
		{name: "anything else is transient", err: errors.New("connection refused"), want: inventory.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inventory.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
