// Package memlimit sets the Go runtime's soft memory limit from the memory
// limit of the container certfleet runs in, leaving room for the memory the
// runtime does not manage.
//
// The example layouts hand the container's limits.memory to the process in
// CERTFLEET_MEMORY_LIMIT (the downward API, in bytes). Setting GOMEMLIMIT to
// the whole limit, as they did before, leaves no room: the collector counts
// only what the Go runtime allocates (heap, stacks, its own metadata), while
// the container is charged for everything resident, and about 40–50 MiB of
// certfleet's resident set is the binary's own code and read-only data
// mapped from its file (scale/ measures it: "MiB files"). A process under
// GOMEMLIMIT=512MiB peaked at 551–554 MiB at 100,000 certificates.
package memlimit

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Env names the variable that carries the container's memory limit.
const Env = "CERTFLEET_MEMORY_LIMIT"

// reserve is what Soft leaves between the container's limit and the
// runtime's: the binary's mapped code and read-only data (47–55 MiB
// resident on Linux 6.18, which maps file pages in large folios; scale/
// logs it per process) and room for the collector to overshoot a soft
// limit briefly.
const reserve = 80 << 20

// Soft is the soft memory limit for a container limited to limit bytes:
// the limit less the reserve, and never less than two thirds of it, so
// that a small limit does not leave the collector running without pause.
func Soft(limit int64) int64 {
	return limit - min(reserve, limit/3)
}

// Apply sets the runtime's soft memory limit to Soft of the limit that
// getenv(Env) gives, and returns it (0 when nothing was set). A GOMEMLIMIT
// in the environment wins: the runtime has already applied it, and an
// operator who sets it means it. A value that is not a quantity of bytes is
// an error, so that a mistyped limit does not go unnoticed.
func Apply(getenv func(string) string) (int64, error) {
	v := getenv(Env)
	if v == "" || getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %v; want the container's memory limit in bytes (536870912) or as a quantity (512Mi), as the downward API's resourceFieldRef to limits.memory gives it", Env, v, err)
	}
	limit := q.Value()
	if limit < 32<<20 {
		return 0, fmt.Errorf("%s=%q: %d bytes is too little to run certfleet; want the container's memory limit in bytes (536870912) or as a quantity (512Mi)", Env, v, limit)
	}
	soft := Soft(limit)
	debug.SetMemoryLimit(soft)
	return soft, nil
}

// FromEnvironment is Apply with the process's environment.
func FromEnvironment() (int64, error) { return Apply(os.Getenv) }

// Current describes the runtime's soft memory limit for a log line:
// "none", or the limit in MiB when it is a whole number of them.
func Current() string {
	n := debug.SetMemoryLimit(-1)
	switch {
	case n == math.MaxInt64:
		return "none"
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}
