package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	vaultapi "github.com/hashicorp/vault/api"
)

// Holder says who holds a backend's lock, for the message another
// process gets when it is refused.
type Holder struct {
	Actor string    `json:"actor"`
	PID   int       `json:"pid"`
	Scope string    `json:"scope,omitempty"`
	Since time.Time `json:"since"`
	// Expires is when a Vault lock lapses unless renewed (zero for a file lock,
	// which the kernel releases when its process dies).
	Expires time.Time `json:"expires,omitzero"`
}

func (h Holder) String() string {
	s := fmt.Sprintf("%s (pid %d", h.Actor, h.PID)
	if h.Scope != "" {
		s += ", scope " + h.Scope
	}
	return s + ", since " + h.Since.UTC().Format(time.RFC3339) + ")"
}

// LockedError is returned when another process holds the lock.
type LockedError struct {
	Backend string
	Name    string
	Holder  Holder
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("another certfleet pass holds the %q lock on %s: %s; wait for it to finish", e.Name, e.Backend, e.Holder)
}

// Lease is a held lock. Lost is closed when the lock can no longer be
// trusted (a Vault lock that could not be renewed): the holder must stop
// writing. Release gives it up.
type Lease struct {
	lost    chan struct{}
	release func()
}

// Lost is closed when the lock was lost.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release gives the lock up; releasing twice is harmless.
func (l *Lease) Release() { l.release() }

// Locker takes a backend-wide exclusive lock, so that two passes (a CLI and
// a daemon, or two CLIs) never issue the same certificates twice or write
// the inventory at once.
type Locker interface {
	Lock(ctx context.Context, name string, h Holder) (*Lease, error)
}

var (
	_ Locker = (*Local)(nil)
	_ Locker = (*Vault)(nil)
)

// Lock takes an flock(2) lock on locks/<name>.lock in the state directory:
// the kernel releases it when the process dies, even by SIGKILL, so a crash
// never leaves the backend locked. The holder is written beside it.
func (l *Local) Lock(_ context.Context, name string, h Holder) (*Lease, error) {
	if err := checkKey(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(l.root, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fl := flock.New(filepath.Join(dir, name+".lock"))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", l.Describe(), err)
	}
	holderFile := filepath.Join(dir, name+".holder")
	if !ok {
		var held Holder
		if b, err := os.ReadFile(holderFile); err == nil {
			_ = json.Unmarshal(b, &held)
		}
		return nil, &LockedError{Backend: l.Describe(), Name: name, Holder: held}
	}
	b, _ := json.Marshal(h)
	if err := writeAtomic(holderFile, b, 0o600); err != nil {
		fl.Unlock()
		return nil, err
	}
	done := false
	return &Lease{lost: make(chan struct{}), release: func() {
		if !done {
			done = true
			os.Remove(holderFile)
			fl.Unlock()
		}
	}}, nil
}

// lockTTL is how long a Vault lock lives unless renewed; it is renewed at a
// third of that, so a process that dies holds it at most this long.
const lockTTL = 60 * time.Second

// Lock takes a lock record at locks/<name> in the catalog's KV v2 mount with
// check-and-set: the record names its holder and an expiry, renewed while
// held; an expired record (its holder died) is taken over with the same
// check-and-set, so two processes racing for it cannot both win.
func (v *Vault) Lock(ctx context.Context, name string, h Holder) (*Lease, error) {
	if err := checkKey(name); err != nil {
		return nil, err
	}
	if err := v.ensureKV(ctx); err != nil {
		return nil, err
	}
	key := "locks/" + name
	kv := v.client.KVv2(v.mount)
	version, held, err := v.readLock(ctx, key)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if held != nil && now.Before(held.Expires) {
		return nil, &LockedError{Backend: v.Describe(), Name: name, Holder: *held}
	}
	h.Expires = now.Add(lockTTL)
	s, err := kv.Put(ctx, key, lockData(h), vaultapi.WithCheckAndSet(version))
	if err != nil {
		if _, again, rerr := v.readLock(ctx, key); rerr == nil && again != nil {
			return nil, &LockedError{Backend: v.Describe(), Name: name, Holder: *again}
		}
		return nil, fmt.Errorf("taking the %q lock on %s: %w", name, v.Describe(), err)
	}
	version = s.VersionMetadata.Version
	lost := make(chan struct{})
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(lockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				h.Expires = time.Now().Add(lockTTL)
				rctx, cancel := context.WithTimeout(context.Background(), lockTTL/3)
				s, err := kv.Put(rctx, key, lockData(h), vaultapi.WithCheckAndSet(version))
				cancel()
				if err != nil {
					close(lost)
					return
				}
				version = s.VersionMetadata.Version
			}
		}
	}()
	released := false
	return &Lease{lost: lost, release: func() {
		if released {
			return
		}
		released = true
		close(stop)
		<-finished
		// An expired record frees the lock for the next taker, whose
		// check-and-set is against this version.
		h.Expires = time.Time{}
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = kv.Put(rctx, key, lockData(h), vaultapi.WithCheckAndSet(version))
	}}, nil
}

// readLock returns the lock record's version (0 when there is none) and its holder.
func (v *Vault) readLock(ctx context.Context, key string) (int, *Holder, error) {
	s, err := v.client.KVv2(v.mount).Get(ctx, key)
	if errors.Is(err, vaultapi.ErrSecretNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("reading the lock %s: %w", key, err)
	}
	if s == nil || s.VersionMetadata == nil {
		return 0, nil, fmt.Errorf("reading the lock %s: no version metadata", key)
	}
	var h Holder
	if raw, ok := s.Data["holder"].(string); ok {
		if err := json.Unmarshal([]byte(raw), &h); err != nil {
			return 0, nil, fmt.Errorf("reading the lock %s: %w", key, err)
		}
	}
	return s.VersionMetadata.Version, &h, nil
}

func lockData(h Holder) map[string]any {
	b, _ := json.Marshal(h)
	return map[string]any{"holder": string(b)}
}
