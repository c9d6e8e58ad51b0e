package target

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/certfleet/certfleet/reconciler/render"
)

// Watches keeps one informer (client-go's list-then-watch cache) of TLS
// Secrets per cluster, so that the daemon's passes observe a cluster from
// the informer's store instead of LISTing every Secret again: a pass over
// an unchanged fleet costs no request at all, and with Seen only Secrets
// whose resourceVersion moved are parsed again.
//
// A store is used only while it can be trusted:
//
//   - before its first sync, a pass waits for it (that wait is the LIST the
//     pass would have made anyway); a failing list makes the pass LIST as
//     without Watches, and so report the cluster's error;
//   - after a list or watch error, until the informer's watch runs again,
//     passes LIST;
//   - Secrets the passes wrote or deleted are read through (one GET each)
//     until the store holds the write, so a pass never decides on its own
//     write's old state (which would issue again, or write twice).
//
// Else the store lags the cluster by the watch's latency; a decision on a
// Secret changed within it is safe all the same, as every write and
// delete is conditional on the uid and resourceVersion observed
// (ErrConflict), and the next pass decides afresh.
//
// Safe for concurrent use. Stop ends every informer.
type Watches struct {
	log *slog.Logger
	// gate, when set, stands between each watch and its informer (tests
	// hold events back with it, to have a store lag for sure).
	gate func(watch.Interface) watch.Interface

	mu       sync.Mutex
	clusters map[string]*watchedCluster
	used     map[string]bool
	stopped  bool
}

// NewWatches is a set of watches, none started yet: a cluster's starts
// when a pass first observes it. log receives the watches' errors (nil:
// discarded).
func NewWatches(log *slog.Logger) *Watches {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watches{log: log, clusters: map[string]*watchedCluster{}, used: map[string]bool{}}
}

// watchedCluster is one cluster's informer.
type watchedCluster struct {
	client   kubernetes.Interface
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
	stopped  <-chan struct{}
	// state is watchStarting until the first list or watch call returns,
	// then watchRunning while the last call started fine, watchBroken
	// after an error (until a watch starts again).
	state atomic.Int32

	mu sync.Mutex
	// pending are the passes' own writes by store key (namespace/name),
	// until the store is seen to hold them.
	pending map[string]written
}

const (
	watchStarting int32 = iota
	watchRunning
	watchBroken
)

// written is a write a pass made: the Secret's uid and the resourceVersion
// the API server answered, or its deletion (gone).
type written struct {
	uid, version string
	gone         bool
}

// tlsSecrets is the field selector of what a cluster's observation holds.
var tlsSecrets = "type=" + string(corev1.SecretTypeTLS)

// start runs an informer of c's TLS Secrets.
func (ws *Watches) start(cluster string, c kubernetes.Interface) *watchedCluster {
	w := &watchedCluster{client: c, pending: map[string]written{}}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = tlsSecrets
			l, err := c.CoreV1().Secrets("").List(ctx, opts)
			if err != nil {
				w.state.Store(watchBroken)
			}
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = tlsSecrets
			wi, err := c.CoreV1().Secrets("").Watch(ctx, opts)
			switch {
			case err != nil && opts.SendInitialEvents != nil && *opts.SendInitialEvents:
				// A server without streaming lists (WatchList): the
				// reflector falls back to a LIST, which says how it went.
				return nil, err
			case err != nil:
				w.state.Store(watchBroken)
				return nil, err
			}
			w.state.Store(watchRunning)
			if ws.gate != nil {
				wi = ws.gate(wi)
			}
			return wi, nil
		},
	}
	w.informer = cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, c), &corev1.Secret{}, 0, cache.Indexers{})
	// A watch that ends in an error (the server gone, a 410 Gone): the
	// store may miss changes until the reflector has listed again.
	_ = w.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		w.state.Store(watchBroken)
		ws.log.Warn("watching TLS Secrets failed; passes LIST the cluster until the watch runs again", "cluster", cluster, "err", err)
		cache.DefaultWatchErrorHandler(ctx, r, err)
	})
	_ = w.informer.SetTransform(trimSecret)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.stopped = cancel, ctx.Done()
	go w.informer.RunWithContext(ctx)
	return w
}

// trimSecret drops what observing never reads from the Secrets the store
// keeps: every managedFields entry but certfleet's create (its manager and
// operation, which Observed.CreatedFields needs), by far the largest part
// of a Secret's metadata.
func trimSecret(obj any) (any, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil
	}
	var keep []metav1.ManagedFieldsEntry
	for _, f := range s.ManagedFields {
		if f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationUpdate {
			keep = []metav1.ManagedFieldsEntry{{Manager: f.Manager, Operation: f.Operation}}
			break
		}
	}
	s.ManagedFields = keep
	return s, nil
}

// syncPoll is how often a pass checks whether a starting informer has
// synced (or failed): a short wait beside the LIST it stands for.
const syncPoll = 10 * time.Millisecond

// ready returns cluster's informer when its store can be observed: it
// starts one for c (or a new one, when the cluster's client changed), and
// waits for its first sync. Nil means LIST.
func (ws *Watches) ready(ctx context.Context, cluster string, c kubernetes.Interface) *watchedCluster {
	if ws == nil {
		return nil
	}
	ws.mu.Lock()
	if ws.stopped {
		ws.mu.Unlock()
		return nil
	}
	w := ws.clusters[cluster]
	if w != nil && w.client != c {
		w.cancel()
		w = nil
	}
	if w == nil {
		w = ws.start(cluster, c)
		ws.clusters[cluster] = w
	}
	ws.used[cluster] = true
	ws.mu.Unlock()
	// Synced, and the watch begun that keeps the store current after.
	for (!w.informer.HasSynced() || w.state.Load() == watchStarting) && w.state.Load() != watchBroken {
		select {
		case <-ctx.Done():
			return nil
		case <-w.stopped:
			return nil // stopped meanwhile (Stop, Sweep)
		case <-time.After(syncPoll):
		}
	}
	if !w.informer.HasSynced() || w.state.Load() != watchRunning {
		return nil
	}
	return w
}

// watched returns cluster's informer, if one runs.
func (ws *Watches) watched(cluster string) *watchedCluster {
	if ws == nil {
		return nil
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.clusters[cluster]
}

// wrote records a write (or, gone, a deletion) a pass made to a Secret of
// cluster, so the passes after read it through until the store holds it.
func (ws *Watches) wrote(cluster, namespace, name string, w written) {
	wc := ws.watched(cluster)
	if wc == nil {
		return // no store to lag behind: a watch started later lists afresh
	}
	wc.mu.Lock()
	defer wc.mu.Unlock()
	wc.pending[namespace+"/"+name] = w
}

// Sweep stops the informers of clusters no pass observed since the last
// Sweep (a catalog change removed them, or no certificate targets them any
// more). The daemon calls it after each pass.
func (ws *Watches) Sweep() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for name, w := range ws.clusters {
		if !ws.used[name] {
			w.cancel()
			delete(ws.clusters, name)
		}
	}
	clear(ws.used)
}

// Stop ends every informer; the Watches start none after it (passes LIST).
func (ws *Watches) Stop() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for name, w := range ws.clusters {
		w.cancel()
		delete(ws.clusters, name)
	}
	ws.stopped = true
}

// Synced reports whether cluster's store is what a pass would observe now
// (for tests and benchmarks).
func (ws *Watches) Synced(cluster string) bool {
	w := ws.watched(cluster)
	return w != nil && w.informer.HasSynced() && w.state.Load() == watchRunning
}

// observeStore is ObserveCluster from w's store: every TLS Secret it holds,
// but the Secrets written by passes read through until the store shows the
// write.
func (k *Kube) observeStore(ctx context.Context, cluster string, w *watchedCluster) (map[string]*Observed, error) {
	last := k.Seen.last(cluster)
	store := w.informer.GetStore()
	items := store.List()
	out := make(map[string]*Observed, len(items))
	parse := newParser()
	defer parse.wait()
	for _, obj := range items {
		if s, ok := obj.(*corev1.Secret); ok {
			add(out, last, cluster, s, parse)
		}
	}
	w.mu.Lock()
	pending := maps.Clone(w.pending)
	w.mu.Unlock()
	for key, p := range pending {
		cur := storedSecret(store, key)
		switch {
		case !p.gone && cur != nil && string(cur.UID) == p.uid && cur.ResourceVersion == p.version,
			p.gone && (cur == nil || string(cur.UID) != p.uid):
			w.settle(key, p) // the store holds the write
			continue
		}
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		got, err := w.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil && got.Type == corev1.SecretTypeTLS:
			delete(out, render.KubernetesAddress(cluster, ns, name).Key)
			add(out, last, cluster, got, parse)
		case err == nil || apierrors.IsNotFound(err):
			delete(out, render.KubernetesAddress(cluster, ns, name).Key)
			got = nil
		default:
			return nil, fmt.Errorf("cluster %s: reading Secret %s/%s, written by an earlier pass: %w", cluster, ns, name, err)
		}
		// The store is at least as new as the read when both agree: what
		// comes later reaches it by the watch, like anyone's change.
		if got == nil && cur == nil || got != nil && cur != nil && got.UID == cur.UID && got.ResourceVersion == cur.ResourceVersion {
			w.settle(key, p)
		}
	}
	parse.wait()
	k.Seen.keep(cluster, out)
	return out, nil
}

// storedSecret is the Secret the store holds under key, or nil.
func storedSecret(store cache.Store, key string) *corev1.Secret {
	obj, ok, _ := store.GetByKey(key)
	if !ok {
		return nil
	}
	s, _ := obj.(*corev1.Secret)
	return s
}

// settle forgets a pending write the store was seen to hold, unless a
// newer write to the Secret replaced it meanwhile.
func (w *watchedCluster) settle(key string, p written) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending[key] == p {
		delete(w.pending, key)
	}
}
