package serve_test

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "k8s.io/api/core/v1"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/schemas"
)

// chromium is Debian's package (.ci/run installs it).
const chromium = "/usr/bin/chromium"

// artifacts is where screenshots go: $CERTFLEET_ARTIFACTS, else a temporary directory.
func artifacts(t *testing.T) string {
	dir := cmp.Or(os.Getenv("CERTFLEET_ARTIFACTS"), t.TempDir())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func manifest(name, ns, dns, duration string) string {
	return `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: ` + name + `, namespace: apps}
spec:
  issuer: mtls
  dnsNames: [` + dns + `]
  uris: ["spiffe://fleet.test/apps/` + name + `"]
  duration: ` + duration + `
  targets:
    - kubernetes: {cluster: alpha, namespace: ` + ns + `, secretName: ` + name + `-tls}
`
}

// TestTheFleetPageInARealBrowser serves the page for a fleet with a
// certificate in sync, one expiring soon, one drifted by hand, one denied
// and an unmanaged Secret, and reads it in headless Chromium.
func TestTheFleetPageInARealBrowser(t *testing.T) {
	w := newWorld(t)
	// alice declares web; bob, later, the payments team's three: each
	// certificate is issued from the commit of its author.
	w.work.Write(t, map[string]string{"teams/web/web.yaml": manifest("web", w.ns, "web.apps.svc.cluster.local", "240h")})
	w.work.Commit(t, "alice", "web")
	w.work.Push(t, w.git.PushURL("fleet"), "main")
	first := w.start()
	eventually(t, 60*time.Second, "web's Secret", func() bool { return w.serial("web") != "" })
	w.work.Write(t, map[string]string{
		"teams/pay/api.yaml":    manifest("api", w.ns, "api.apps.svc.cluster.local", "240h"),
		"teams/pay/soon.yaml":   manifest("soon", w.ns, "soon.apps.svc.cluster.local", "3h"),
		"teams/pay/denied.yaml": manifest("denied", w.ns, "denied.elsewhere.org", "24h"),
	})
	w.work.Commit(t, "bob", "payments")
	w.work.Push(t, w.git.PushURL("fleet"), "main")
	if code := first.hook(t, w.secret); code != 202 {
		t.Fatalf("webhook: %d", code)
	}
	eventually(t, 60*time.Second, "api's and soon's Secrets", func() bool { return w.serial("api") != "" && w.serial("soon") != "" })
	first.stop()

	// By hand: api's Secret now holds web's certificate; a TLS Secret
	// nobody declared appears beside them.
	ctx := context.Background()
	secrets := clientset(t).CoreV1().Secrets(w.ns)
	web, err := secrets.Get(ctx, "web-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	api, err := secrets.Get(ctx, "api-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	api.Data = web.Data
	if _, err := secrets.Update(ctx, api, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api-legacy-tls"}, Type: corev1.SecretTypeTLS, Data: web.Data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A report-only daemon shows the drift instead of repairing it.
	dm := w.start(func(c *schemas.ServeConfig) { c.ReportOnly = true })
	eventually(t, 60*time.Second, "the report-only pass", func() bool { code, _ := dm.get(t, "/readyz"); return code == 200 })

	b, err := backend.OpenVault(ctx, backend.VaultConfig{Address: vaultServer.Addr, Token: vaultServer.Token, CatalogMount: w.id + "-catalog"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(ctx, b)
	if err != nil {
		t.Fatal(err)
	}

	alloc, cancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.WindowSize(1400, 1000))...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", chromium, err)
	}
	var mu sync.Mutex
	var consoleErrors []string
	msgs := chromedp.Console(bctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				consoleErrors = append(consoleErrors, m.String())
				mu.Unlock()
			}
		}
	}()
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	count := func(id string) int {
		t.Helper()
		n, err := strconv.Atoi(strings.TrimSpace(text("#" + id)))
		if err != nil {
			t.Fatalf("#%s: %v", id, err)
		}
		return n
	}
	shot := func(name string) {
		t.Helper()
		html, err := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil || strings.Contains(html, "PRIVATE KEY") || strings.Contains(html, "BEGIN CERTIFICATE") {
			t.Errorf("%s: the page holds key or certificate material (or cannot be read: %v)", name, err)
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(artifacts(t), name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", p, len(png))
	}

	start := time.Now()
	if err := chromedp.Do(bctx, chromedp.Navigate(dm.http.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#timeline"))); err != nil {
		t.Fatal(err)
	}
	t.Logf("overview loaded in %s", time.Since(start))
	shot("fleet-overview.png")

	// The counts are the inventory's and the pass's.
	if got := count("count-certificates"); got != len(inv) || got != 3 {
		t.Errorf("the page counts %d certificates; the inventory holds %d (want 3: web, api, soon)", got, len(inv))
	}
	if got := count("count-denied"); got != 1 {
		t.Errorf("denied = %d, want 1 (denied.elsewhere.org is outside the policy)", got)
	}
	if got := count("count-unmanaged"); got != 1 {
		t.Errorf("unmanaged = %d, want 1 (api-legacy-tls)", got)
	}
	if got := count("count-insync"); got != 2 {
		t.Errorf("in sync = %d, want 2 (web and soon)", got)
	}
	drift := text("#drift")
	if !strings.Contains(drift, w.ns+"/api-tls") || !strings.Contains(drift, "teams/pay/api.yaml:") {
		t.Errorf("the drift table lacks api's Secret with its file:line:\n%s", drift)
	}
	if um := text("#unmanaged"); !strings.Contains(um, "api-legacy-tls") || !strings.Contains(um, "bob") {
		t.Errorf("the unmanaged table lacks api-legacy-tls owned (best guess) by bob:\n%s", um)
	}
	if n, err := chromedp.Run(bctx, chromedp.Nodes(chromedp.CSSAll("#timeline rect.bar"))); err != nil || len(n) == 0 {
		t.Errorf("the timeline has no bars (%v)", err)
	}
	if n, err := chromedp.Run(bctx, chromedp.Nodes(chromedp.CSSAll("#timeline line.authority"))); err != nil || len(n) != 1 {
		t.Errorf("the timeline marks %d authority expiries, want 1 (the 30-day root): %v", len(n), err)
	}

	search := func(field, value string) string {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Navigate(dm.http.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#search")),
			chromedp.SetValue(chromedp.CSS(`#search input[name="`+field+`"]`), value),
			chromedp.Submit(chromedp.CSS(`#search input[name="`+field+`"]`)),
			chromedp.WaitVisible(chromedp.CSS("#results"))); err != nil {
			t.Fatal(err)
		}
		return text("#results tbody")
	}
	if got := search("san", "soon.apps.svc"); !strings.Contains(got, "apps/soon") || strings.Contains(got, "apps/web") || strings.Contains(got, "apps/api") {
		t.Errorf("searching san=soon.apps.svc: want only apps/soon, got\n%s", got)
	}
	if got := search("owner", "alice"); !strings.Contains(got, "apps/web") || strings.Contains(got, "apps/api") || strings.Contains(got, "apps/soon") {
		t.Errorf("searching owner=alice: want only apps/web, got\n%s", got)
	}
	if got := search("owner", "bob"); !strings.Contains(got, "apps/api") || !strings.Contains(got, "apps/soon") || strings.Contains(got, "apps/web") {
		t.Errorf("searching owner=bob: want apps/api and apps/soon, got\n%s", got)
	}

	// From the results to a certificate's page and its history.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#results a[href*="api"]`)),
		chromedp.WaitVisible(chromedp.CSS("#history"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#certificate"); got != "apps/api" {
		t.Errorf("the certificate page is for %q, want apps/api", got)
	}
	if got := text("#manifest"); !strings.HasPrefix(got, "teams/pay/api.yaml:") {
		t.Errorf("manifest = %q, want teams/pay/api.yaml:<line>", got)
	}
	if got := text("#verdict"); !strings.Contains(got, "allowed") {
		t.Errorf("verdict = %q, want allowed", got)
	}
	hist := text("#history tbody")
	if !strings.Contains(hist, "issue") || !strings.Contains(hist, inv["apps/api"].Serial) || !strings.Contains(hist, "bob") ||
		!strings.Contains(hist, w.ns+"/api-tls") {
		t.Errorf("the history lacks the issuance of %s by bob's commit to %s/api-tls:\n%s", inv["apps/api"].Serial, w.ns, hist)
	}
	if got := text("#targets"); !strings.Contains(got, "api-tls") {
		t.Errorf("targets lack api-tls:\n%s", got)
	}
	shot("fleet-certificate.png")

	time.Sleep(200 * time.Millisecond) // the last console events
	mu.Lock()
	defer mu.Unlock()
	if len(consoleErrors) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(consoleErrors, "\n"))
	}
}
