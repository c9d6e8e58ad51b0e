package backend_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
)

func TestThePassLockIsExclusiveAndNamesItsHolder(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend.Backend, _ string) {
		ctx := context.Background()
		l := b.(backend.Locker)
		first, err := l.Lock(ctx, "pass", backend.Holder{Actor: "alice@ci", PID: 101, Scope: "teams/web", Since: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = l.Lock(ctx, "pass", backend.Holder{Actor: "bob@laptop", PID: 202, Since: time.Now()})
		var locked *backend.LockedError
		if !errors.As(err, &locked) || locked.Holder.Actor != "alice@ci" || locked.Holder.PID != 101 ||
			!strings.Contains(err.Error(), "alice@ci (pid 101, scope teams/web") {
			t.Fatalf("second lock: %v, want a LockedError naming alice@ci pid 101", err)
		}
		// Another name is another lock.
		other, err := l.Lock(ctx, "shard-b", backend.Holder{Actor: "bob@laptop", PID: 202, Since: time.Now()})
		if err != nil {
			t.Fatalf("a lock of another name: %v", err)
		}
		other.Release()
		first.Release()
		first.Release() // twice is harmless
		again, err := l.Lock(ctx, "pass", backend.Holder{Actor: "bob@laptop", PID: 202, Since: time.Now()})
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		again.Release()
	})
}
