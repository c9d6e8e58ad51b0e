package serve

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/schemas"
)

// Metrics are the daemon's Prometheus metrics. The per-certificate series
// are generated at scrape time from the latest pass's state, so a
// certificate that goes away takes its series with it: none goes stale.
type Metrics struct {
	Registry *prometheus.Registry

	issuances     *prometheus.CounterVec
	duration      prometheus.Histogram
	fetchFailures prometheus.Counter
	revision      *prometheus.GaugeVec

	fleet *fleetCollector
}

var targetLabels = []string{"certificate", "target", "cluster", "namespace", "issuer"}

// NewMetrics registers the metrics in a registry of their own (plus the Go
// and process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		issuances: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "certfleet_issuance_total",
			Help: "Certificates issued (first issuance, renewal, reissue), by issuer and result: success, failure (transient, retried with backoff) or refused (permanent: the issuer's role refused it; not retried until the declaration or the catalog changes)."}, []string{"issuer", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "certfleet_reconcile_duration_seconds",
			Help: "Duration of reconcile passes.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		fetchFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "certfleet_source_fetch_failures_total",
			Help: "Failed fetches of the source repository."}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "certfleet_source_revision_info",
			Help: "The revision the daemon reconciles (1), with whether it is the latest or the last good one."}, []string{"revision", "ref", "state"}),
		fleet: newFleetCollector(),
	}
	m.Registry.MustRegister(m.issuances, m.duration, m.fetchFailures, m.revision, m.fleet,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observePass records a pass.
func (m *Metrics) observePass(rep *reconcile.Result, took time.Duration, cat *schemas.Catalog) {
	m.duration.Observe(took.Seconds())
	for k, n := range rep.Issuances {
		m.issuances.WithLabelValues(k.Issuer, string(k.Result)).Add(float64(n))
	}
	m.fleet.set(rep.State, cat, rep.Rotations)
}

func (m *Metrics) setRevision(revision, ref, state string) {
	m.revision.Reset()
	m.revision.WithLabelValues(revision, ref, state).Set(1)
}

// fleetCollector turns the latest state into series.
type fleetCollector struct {
	mu          sync.Mutex
	state       []reconcile.TargetState
	authorities map[string]time.Time
	// phases is every authority's rotation phase (0: idle).
	phases map[string]decide.Phase

	notAfter, notBefore, renewal, ready, drift, failing, authority, phase *prometheus.Desc
}

func newFleetCollector() *fleetCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &fleetCollector{
		notAfter:  d("certfleet_certificate_not_after_timestamp_seconds", "When the delivered certificate expires.", targetLabels...),
		notBefore: d("certfleet_certificate_not_before_timestamp_seconds", "When the delivered certificate became valid.", targetLabels...),
		renewal:   d("certfleet_certificate_renewal_timestamp_seconds", "When the certificate will be renewed (with its jitter).", targetLabels...),
		ready:     d("certfleet_certificate_ready", "1 when the target holds a valid certificate with its key, else 0.", targetLabels...),
		drift: d("certfleet_certificate_drift", "1 per target that is not in sync, by reason (Missing, SpecChanged, ModifiedOutOfBand, Expiring, Expired, Orphaned, Unmanaged, …).",
			append(targetLabels, "reason")...),
		failing:   d("certfleet_certificate_renewal_failing_since_timestamp_seconds", "Since when issuing or delivering the certificate fails.", "certificate", "issuer"),
		authority: d("certfleet_authority_not_after_timestamp_seconds", "When the authority's current CA certificate expires.", "authority"),
		phase: d("certfleet_authority_rotation_phase", "Where the authority's rotation stands: 0 idle, 1 a new issuer no trust bundle place holds yet, "+
			"2 trust bundles being published, 3 leaves of the previous CA being reissued, 4 the previous CA retired from the bundles and its issuer tidied.", "authority"),
	}
}

func (c *fleetCollector) set(state []reconcile.TargetState, cat *schemas.Catalog, rotations []decide.AuthorityPhase) {
	auth := map[string]time.Time{}
	phases := map[string]decide.Phase{}
	if cat != nil {
		for name, a := range cat.Authorities {
			if a.Status.NotAfter != nil {
				auth[name] = *a.Status.NotAfter
			}
			phases[name] = decide.PhaseIdle
		}
	}
	for _, r := range rotations {
		phases[r.Authority] = r.Phase
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state, c.authorities, c.phases = state, auth, phases
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.notAfter, c.notBefore, c.renewal, c.ready, c.drift, c.failing, c.authority, c.phase} {
		ch <- d
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	failing := map[string]reconcile.TargetState{}
	for _, s := range c.state {
		labels := []string{s.Certificate, s.Target, s.Cluster, s.Namespace, s.Issuer}
		declared := s.Reason != decide.Orphaned && s.Reason != decide.Unmanaged
		if declared {
			if !s.NotAfter.IsZero() {
				ch <- prometheus.MustNewConstMetric(c.notAfter, prometheus.GaugeValue, unix(s.NotAfter), labels...)
				ch <- prometheus.MustNewConstMetric(c.notBefore, prometheus.GaugeValue, unix(s.NotBefore), labels...)
			}
			if !s.RenewAt.IsZero() {
				ch <- prometheus.MustNewConstMetric(c.renewal, prometheus.GaugeValue, unix(s.RenewAt), labels...)
			}
			ready := 0.0
			if s.Ready {
				ready = 1
			}
			ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, ready, labels...)
			if s.FailingSince != nil {
				failing[s.Certificate] = s
			}
		}
		if s.Reason != decide.InSync {
			ch <- prometheus.MustNewConstMetric(c.drift, prometheus.GaugeValue, 1, append(labels, string(s.Reason))...)
		}
	}
	for id, s := range failing {
		ch <- prometheus.MustNewConstMetric(c.failing, prometheus.GaugeValue, unix(*s.FailingSince), id, s.Issuer)
	}
	for name, t := range c.authorities {
		ch <- prometheus.MustNewConstMetric(c.authority, prometheus.GaugeValue, unix(t), name)
	}
	for name, p := range c.phases {
		ch <- prometheus.MustNewConstMetric(c.phase, prometheus.GaugeValue, float64(p), name)
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
