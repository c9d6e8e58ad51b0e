package target

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/csaupgrade"

	"github.com/certfleet/certfleet/reconciler/render"
)

// Clients returns the client of a catalog cluster by name.
type Clients func(ctx context.Context, cluster string) (kubernetes.Interface, error)

// Kube reads and writes kubernetes.io/tls Secrets.
type Kube struct {
	Clients Clients
	// Adopt lets Write overwrite an existing Secret that does not carry
	// certfleet's marks for the certificate (default false: refused with
	// ErrNotOwned).
	Adopt bool
	// Seen, when set, keeps what earlier passes parsed: a Secret listed
	// again with the same uid and resourceVersion is not parsed again (the
	// daemon keeps one across passes; nil parses every Secret).
	Seen *Seen
	// Watches, when set, observes clusters from informers' stores rather
	// than a LIST per pass (the daemon's; nil LISTs).
	Watches *Watches
}

// Seen holds the observations of each cluster's last LIST, by Secret key,
// so that an unchanged Secret costs its share of the LIST and no parsing
// (x509 and key) — what dominated a no-op pass. Safe for concurrent use;
// observations are read only once made.
type Seen struct {
	mu       sync.Mutex
	clusters map[string]map[string]*Observed
}

// NewSeen is an empty cache.
func NewSeen() *Seen { return &Seen{clusters: map[string]map[string]*Observed{}} }

func (s *Seen) last(cluster string) map[string]*Observed {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clusters[cluster]
}

// keep replaces a cluster's observations: Secrets gone since drop out.
func (s *Seen) keep(cluster string, now map[string]*Observed) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clusters[cluster] = now
}

// ObserveCluster lists every TLS Secret of a cluster, in one LIST parsed
// as it arrives, once per pass: certfleet's (desired or orphaned) and the
// others (unmanaged: the sprawl drift reports).
func (k *Kube) ObserveCluster(ctx context.Context, cluster string) (map[string]*Observed, error) {
	c, err := k.Clients(ctx, cluster)
	if err != nil {
		return nil, err
	}
	if w := k.Watches.ready(ctx, cluster, c); w != nil {
		return k.observeStore(ctx, cluster, w)
	}
	out := map[string]*Observed{}
	last := k.Seen.last(cluster)
	parse := newParser()
	defer parse.wait()
	// One LIST, not pages: an API server (1.33) serves a consistent LIST
	// from its watch cache, but the pages after the first from etcd, which
	// made a no-op pass over 10,000 certificates (20,000 Secrets) 4.5× a
	// plain LIST instead of 1.5× (make bench). The objects are kept (Seen)
	// either way: pages only spared the one response buffer, which the
	// streamed LIST does not hold.
	err = listTLSSecrets(ctx, c, func(s *corev1.Secret) { add(out, last, cluster, s, parse) })
	if err != nil {
		return nil, fmt.Errorf("cluster %s: listing TLS Secrets: %w", cluster, err)
	}
	parse.wait()
	k.Seen.keep(cluster, out)
	return out, nil
}

// add puts the observation of Secret s into out: last's, when s is the
// same object at the same resourceVersion (nothing to parse), else a new
// one, which parse fills in.
func add(out, last map[string]*Observed, cluster string, s *corev1.Secret, parse *parser) {
	addr := render.KubernetesAddress(cluster, s.Namespace, s.Name)
	if o := last[addr.Key]; o != nil && o.UID == string(s.UID) && o.Version == s.ResourceVersion {
		out[addr.Key] = o // unchanged since the last pass: nothing to parse
		return
	}
	o := &Observed{
		Target:  &render.Target{Address: addr},
		Exists:  true,
		UID:     string(s.UID),
		Version: s.ResourceVersion,
		Bundle:  Bundle{Cert: s.Data[corev1.TLSCertKey], Key: s.Data[corev1.TLSPrivateKeyKey], CA: s.Data["ca.crt"]},
		Managed: s.Labels[LabelManagedBy] == ManagedByValue,
	}
	if o.Managed {
		o.Annotations, o.Labels = s.Annotations, s.Labels
		for _, f := range s.ManagedFields {
			o.CreatedFields = o.CreatedFields || (f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationUpdate)
		}
	}
	parse.add(o)
	out[o.Target.Key] = o
}

// parser parses observations (x509 and key: what a first or one-shot
// observation spends most of its CPU on) on every core, while the caller
// goes on reading the rest of the LIST. The key is left for later
// (CheckKeys, once the inventory is read): where a Secret holds exactly
// what certfleet wrote, the fingerprint the inventory recorded spares
// parsing it, and no pass reads the key of a Secret that is neither
// declared nor recorded (another's: the sprawl drift reports).
type parser struct {
	todo chan *Observed
	wg   sync.WaitGroup
	once sync.Once
}

func newParser() *parser {
	p := &parser{todo: make(chan *Observed, 256)}
	n := goruntime.GOMAXPROCS(0)
	p.wg.Add(n)
	for range n {
		go func() {
			defer p.wg.Done()
			for o := range p.todo {
				o.parse(true)
			}
		}()
	}
	return p
}

// add has o parsed; o must not be read before wait returns.
func (p *parser) add(o *Observed) { p.todo <- o }

// wait returns once every observation added is parsed; no add after it.
func (p *parser) wait() {
	p.once.Do(func() { close(p.todo) })
	p.wg.Wait()
}

// Write delivers the bundle to a Secret, provided the Secret is still what
// prev (the observation the decision was based on; nil when the Secret was
// absent) says it is:
//
//   - absent: a Create, which fails when a Secret of that name exists —
//     one that appeared since, or one that is not of type kubernetes.io/tls
//     and so was never listed. Server-side apply cannot say "only if absent"
//     (a resourceVersion is refused on create, a uid alone does not stop one),
//     so the create is a plain one (its fields recorded under an Update by
//     certfleet). The first later apply that leaves out a label or
//     annotation the Secret carries first hands them to certfleet's apply
//     manager (csaupgrade), so the apply drops them: one write per issuance,
//     and the extra one only when a template loses a key.
//   - present: server-side apply (field manager certfleet) carrying the
//     observed metadata.uid and metadata.resourceVersion, which the API
//     server checks: a Secret changed, deleted or replaced since is not
//     written (ErrConflict). A Secret without certfleet's marks for
//     m.CertificateID is refused (ErrNotOwned) unless k.Adopt.
func (k *Kube) Write(ctx context.Context, t render.Target, b Bundle, m Meta, prev *Observed) error {
	c, err := k.Clients(ctx, t.Cluster)
	if err != nil {
		return err
	}
	labels := map[string]string{}
	annotations := map[string]string{}
	if t.Template != nil {
		for k, v := range t.Template.Labels {
			labels[k] = v
		}
		for k, v := range t.Template.Annotations {
			annotations[k] = v
		}
	}
	labels[LabelManagedBy] = ManagedByValue
	labels[LabelCertificate] = CertificateLabel(m.CertificateID)
	for k, v := range m.Annotations(b) {
		annotations[k] = v
	}
	data := map[string][]byte{corev1.TLSCertKey: b.Cert, corev1.TLSPrivateKeyKey: b.Key, "ca.crt": b.CA}
	where := fmt.Sprintf("Secret %s/%s in cluster %s", t.Namespace, t.Name, t.Cluster)
	if prev == nil || !prev.Exists {
		return k.create(ctx, c, where, t.Cluster, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace, Labels: labels, Annotations: annotations},
			Type:       corev1.SecretTypeTLS,
			Data:       data,
		})
	}
	if !prev.OwnedBy(m.CertificateID) && !k.Adopt {
		return fmt.Errorf("%s: not overwritten: it %w", where, ErrNotOwned)
	}
	if prev.UID == "" || prev.Version == "" {
		// Without them the apply would be unconditional.
		return fmt.Errorf("%s: the observation has no uid or resourceVersion to make the write conditional on", where)
	}
	version := prev.Version
	if prev.CreatedFields && drops(prev, labels, annotations) {
		if version, err = k.upgradeFields(ctx, c, where, t, prev); err != nil {
			return err
		}
	}
	ac := corev1ac.Secret(t.Name, t.Namespace).
		WithUID(types.UID(prev.UID)).
		WithResourceVersion(version).
		WithType(corev1.SecretTypeTLS).
		WithLabels(labels).
		WithAnnotations(annotations).
		WithData(data)
	// Force takes over fields other managers set (a hand edit of tls.crt):
	// the preconditions already say the decision saw them.
	applied, err := c.CoreV1().Secrets(t.Namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	switch {
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return fmt.Errorf("%s: not overwritten: it %w (uid %s, resourceVersion %s): %v", where, ErrConflict, prev.UID, prev.Version, err)
	case err != nil:
		return fmt.Errorf("applying %s: %w", where, err)
	}
	k.Watches.wrote(t.Cluster, t.Namespace, t.Name, written{uid: string(applied.UID), version: applied.ResourceVersion})
	return nil
}

// create creates s, failing if anything holds its name.
func (k *Kube) create(ctx context.Context, c kubernetes.Interface, where, cluster string, s *corev1.Secret) error {
	created, err := c.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("%s: it was absent when observed and exists now (it appeared since, or is not of type %s); not overwritten: %w",
			where, corev1.SecretTypeTLS, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", where, err)
	}
	k.Watches.wrote(cluster, s.Namespace, s.Name, written{uid: string(created.UID), version: created.ResourceVersion})
	return nil
}

// drops reports whether an apply of labels and annotations leaves out one
// the Secret carries: only then must the fields certfleet's create
// recorded move to its apply first (upgradeFields), or the apply would
// keep them. Deferring that move from the create to here spares every
// issuance a second write to the API server.
func drops(prev *Observed, labels, annotations map[string]string) bool {
	for k := range prev.Labels {
		if _, ok := labels[k]; !ok {
			return true
		}
	}
	for k := range prev.Annotations {
		if _, ok := annotations[k]; !ok {
			return true
		}
	}
	return false
}

// upgradeFields moves the fields certfleet's create recorded under an
// Update entry to its apply entry (csaupgrade), so an apply can remove
// the labels and annotations it no longer sets. The patch is conditional
// on the observed resourceVersion; it returns the new one.
func (k *Kube) upgradeFields(ctx context.Context, c kubernetes.Interface, where string, t render.Target, prev *Observed) (string, error) {
	live, err := c.CoreV1().Secrets(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || err == nil && (string(live.UID) != prev.UID || live.ResourceVersion != prev.Version):
		return "", fmt.Errorf("%s: not overwritten: it %w (uid %s, resourceVersion %s)", where, ErrConflict, prev.UID, prev.Version)
	case err != nil:
		return "", fmt.Errorf("reading %s: %w", where, err)
	}
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(live, sets.New(FieldManager), FieldManager)
	if err != nil || patch == nil {
		return prev.Version, err
	}
	// The patch tests the resourceVersion read: a change since fails it.
	patched, err := c.CoreV1().Secrets(t.Namespace).Patch(ctx, t.Name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	switch {
	case apierrors.IsConflict(err) || apierrors.IsInvalid(err) || apierrors.IsNotFound(err):
		return "", fmt.Errorf("%s: not overwritten: it %w (uid %s, resourceVersion %s): %v", where, ErrConflict, prev.UID, prev.Version, err)
	case err != nil:
		return "", fmt.Errorf("recording certfleet's field ownership of %s: %w", where, err)
	}
	k.Watches.wrote(t.Cluster, t.Namespace, t.Name, written{uid: string(patched.UID), version: patched.ResourceVersion})
	return patched.ResourceVersion, nil
}

// Delete prunes a Secret of certificate id. It re-reads the Secret and
// deletes it only if it still carries certfleet's marks for id (else
// ErrTakenOver, and it stays) and, when prev (the observation the prune was
// decided on) is given, is the same object unchanged since (else
// ErrConflict). The delete carries the uid and resourceVersion it checked
// as preconditions, so a change between the re-read and the delete stops
// it too. A Secret that is gone already is fine.
func (k *Kube) Delete(ctx context.Context, t render.Target, id string, prev *Observed) error {
	c, err := k.Clients(ctx, t.Cluster)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("Secret %s/%s in cluster %s", t.Namespace, t.Name, t.Cluster)
	s, err := c.CoreV1().Secrets(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s before pruning it: %w", where, err)
	}
	if !owned(s.Labels, s.Annotations, id) {
		return fmt.Errorf("%s: not pruned: it %w (certificate %s)", where, ErrTakenOver, id)
	}
	if prev != nil && prev.Exists && (string(s.UID) != prev.UID || s.ResourceVersion != prev.Version) {
		return fmt.Errorf("%s: not pruned: it %w (uid %s, resourceVersion %s; now %s, %s)", where, ErrConflict, prev.UID, prev.Version, s.UID, s.ResourceVersion)
	}
	uid, rv := s.UID, s.ResourceVersion
	err = c.CoreV1().Secrets(t.Namespace).Delete(ctx, t.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	switch {
	case apierrors.IsNotFound(err):
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s: not pruned: it %w: %v", where, ErrConflict, err)
	case err != nil:
		return fmt.Errorf("deleting %s: %w", where, err)
	}
	k.Watches.wrote(t.Cluster, t.Namespace, t.Name, written{uid: string(uid), gone: true})
	return nil
}

// ReadTrustBundle reads back the PEM a trust bundle's ConfigMap or Secret
// holds under key, as workloads mounting it will see it.
func (k *Kube) ReadTrustBundle(ctx context.Context, cluster, namespace, name, kind, key string) (string, error) {
	c, err := k.Clients(ctx, cluster)
	if err != nil {
		return "", err
	}
	if kind == "Secret" {
		s, err := c.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("reading trust bundle Secret %s/%s in cluster %s: %w", namespace, name, cluster, err)
		}
		return string(s.Data[key]), nil
	}
	cm, err := c.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading trust bundle ConfigMap %s/%s in cluster %s: %w", namespace, name, cluster, err)
	}
	return cm.Data[key], nil
}

// WriteTrustBundle server-side applies a ConfigMap (or a Secret, kind
// "Secret") holding a PEM bundle of CA certificates under key, and returns
// what the API server stored under key: the apply's response is the
// read-back, at no extra request.
func (k *Kube) WriteTrustBundle(ctx context.Context, cluster, namespace, name, kind, key, pem, bundle string) (string, error) {
	c, err := k.Clients(ctx, cluster)
	if err != nil {
		return "", err
	}
	labels := map[string]string{LabelManagedBy: ManagedByValue, "certfleet.dev/trust-bundle": CertificateLabel(bundle)}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	var held string
	if kind == "Secret" {
		ac := corev1ac.Secret(name, namespace).WithType(corev1.SecretTypeOpaque).WithLabels(labels).WithData(map[string][]byte{key: []byte(pem)})
		var s *corev1.Secret
		if s, err = c.CoreV1().Secrets(namespace).Apply(ctx, ac, opts); err == nil {
			held = string(s.Data[key])
		}
	} else {
		ac := corev1ac.ConfigMap(name, namespace).WithLabels(labels).WithData(map[string]string{key: pem})
		var cm *corev1.ConfigMap
		if cm, err = c.CoreV1().ConfigMaps(namespace).Apply(ctx, ac, opts); err == nil {
			held = cm.Data[key]
		}
	}
	if err != nil {
		return "", fmt.Errorf("applying trust bundle %s %s/%s in cluster %s: %w", kind, namespace, name, cluster, err)
	}
	return held, nil
}
