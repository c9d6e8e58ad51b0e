package backend

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/providers/dns/cloudflare"
	"github.com/go-acme/lego/v5/providers/dns/exec"
	"github.com/go-acme/lego/v5/providers/dns/httpreq"
	"github.com/go-acme/lego/v5/registration"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

// dnsProviders are the lego DNS providers certfleet carries, by the names
// lego gives them; each reads its usual environment variables. lego's
// factory of all of them cannot be built from the module proxy here (some
// providers' SDKs are not served), so the list is explicit and must match
// schemas.ACMEDNSProviders.
var dnsProviders = map[string]func() (challenge.Provider, error){
	"exec":       func() (challenge.Provider, error) { return exec.NewDNSProvider() },
	"httpreq":    func() (challenge.Provider, error) { return httpreq.NewDNSProvider() },
	"cloudflare": func() (challenge.Provider, error) { return cloudflare.NewDNSProvider() },
}

// acmeAccountKey is where an ACME issuer's account lives in the backend's store.
func acmeAccountKey(issuer string) string { return "acme/accounts/" + issuer }

// acmeAccount is an ACME account as the backend keeps it: the key (PEM),
// the CA's account URL and the directory it was registered at. It is
// created once per issuer and reused; RotateACMEAccountKey replaces the key.
type acmeAccount struct {
	Server string `json:"server"`
	Email  string `json:"email,omitempty"`
	URI    string `json:"uri,omitempty"`
	KeyPEM string `json:"keyPEM"`

	key crypto.Signer
}

// legoUser adapts an account to lego's registration.User.
type legoUser struct{ a *acmeAccount }

func (u legoUser) GetEmail() string { return u.a.Email }
func (u legoUser) GetRegistration() *acme.ExtendedAccount {
	if u.a.URI == "" {
		return nil
	}
	return &acme.ExtendedAccount{Location: u.a.URI}
}
func (u legoUser) GetPrivateKey() crypto.Signer { return u.a.key }

var quietLego sync.Once

// quietLegoLog silences lego: it logs to standard output by default, and
// certfleet's output is its report.
func quietLegoLog() {
	quietLego.Do(func() {
		legolog.SetDefault(slog.New(slog.NewTextHandler(logSink{}, &slog.HandlerOptions{Level: slog.LevelError})))
	})
}

// acmeSigner orders certificates from ACME CAs for the backends. kvRead
// reads a KV v2 secret's field for an EAB key in Vault (nil: the backend
// has no Vault).
type acmeSigner struct {
	store  Store
	kvRead func(ctx context.Context, ref string) (string, error)
	// accounts serialises account creation per issuer, so parallel
	// issuances in one pass register one account, not one each.
	mu sync.Mutex
	// ari keeps the CAs' renewal windows until they say to ask again.
	ari ariCache
}

// Sign orders a certificate for the CSR: a new order, the challenges
// solved (HTTP-01 on certfleet's listener, DNS-01 through lego's
// provider), then finalize with the CSR; the key never leaves the caller.
// ttl is asked for as the order's notAfter only when the CA supports it,
// which most do not: the CA decides the lifetime.
func (s *acmeSigner) Sign(ctx context.Context, iss *schemas.Issuer, csrPEM []byte) (*Signed, error) {
	quietLegoLog()
	a := iss.Spec.ACME
	if a.Solvers.DNS01 == nil && !HTTP01.isServing() {
		// Checked before ordering: an order whose challenge cannot be
		// answered costs the CA's quota for nothing.
		return nil, errNoHTTP01Listener
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	client, err := s.client(ctx, iss)
	if err != nil {
		return nil, err
	}
	req := certificate.ObtainForCSRRequest{CSR: csr, Bundle: true, PreferredChain: a.PreferredChain, Profile: a.Profile}
	res, err := client.Certificate.ObtainForCSR(ctx, req)
	if err != nil {
		return nil, problemOf(err, certificateNames(csr))
	}
	return signedOf(res)
}

// client builds a lego client for the issuer with its account, creating
// and registering the account on first use.
func (s *acmeSigner) client(ctx context.Context, iss *schemas.Issuer) (*lego.Client, error) {
	a := iss.Spec.ACME
	hc, err := acmeHTTPClient(a.CABundle)
	if err != nil {
		return nil, err
	}
	acct, err := s.ensureAccount(ctx, iss, hc)
	if err != nil {
		return nil, err
	}
	client, err := newLegoClient(acct, a, hc)
	if err != nil {
		return nil, err
	}
	if a.Solvers.HTTP01 != nil {
		if err := client.Challenge.SetHTTP01Provider(HTTP01); err != nil {
			return nil, err
		}
	}
	if d := a.Solvers.DNS01; d != nil {
		p, err := dnsProvider(d)
		if err != nil {
			return nil, err
		}
		timeout, _ := d.PropagationTimeout.Parse()
		var opts []dns01.ChallengeOption
		if len(d.Nameservers) > 0 {
			// lego keeps one DNS client per process: the last issuer's
			// nameservers are the ones the propagation check asks.
			dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: d.Nameservers, Timeout: 10 * time.Second}))
		}
		if d.SkipAuthoritativeCheck {
			opts = append(opts, dns01.DisableAuthoritativeNssPropagationRequirement())
		}
		if err := client.Challenge.SetDNS01Provider(withTimeout(p, timeout), opts...); err != nil {
			return nil, err
		}
	}
	return client, nil
}

func newLegoClient(acct *acmeAccount, a *schemas.ACMEIssuer, hc *http.Client) (*lego.Client, error) {
	cfg := lego.NewConfig(legoUser{acct})
	cfg.CADirURL, cfg.HTTPClient, cfg.UserAgent = a.Server, hc, "certfleet"
	client, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("reaching the ACME directory %s: %w", a.Server, err)
	}
	return client, nil
}

// ensureAccount returns the issuer's account, registered. It holds the
// lock only for that, so parallel issuances of a pass register one
// account between them and then order in parallel.
func (s *acmeSigner) ensureAccount(ctx context.Context, iss *schemas.Issuer, hc *http.Client) (*acmeAccount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, err := s.account(ctx, iss.Metadata.Name, iss.Spec.ACME)
	if err != nil || acct.URI != "" {
		return acct, err
	}
	client, err := newLegoClient(acct, iss.Spec.ACME, hc)
	if err != nil {
		return nil, err
	}
	if err := s.register(ctx, client, iss, acct); err != nil {
		return nil, err
	}
	return acct, nil
}

// account loads the issuer's account, or makes a key for a new one (the
// CA's URL is filled in by register). An account made for another
// directory is replaced: accounts do not carry over between CAs.
func (s *acmeSigner) account(ctx context.Context, issuer string, a *schemas.ACMEIssuer) (*acmeAccount, error) {
	acct := &acmeAccount{}
	err := s.store.Get(ctx, acmeAccountKey(issuer), acct)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("reading the ACME account of issuer %s: %w", issuer, err)
	}
	if err == nil && acct.Server == a.Server {
		k, err := pki.ParseKey([]byte(acct.KeyPEM))
		if err != nil {
			return nil, fmt.Errorf("the ACME account key of issuer %s is unreadable: %w", issuer, err)
		}
		acct.key, acct.Email = k, a.Email
		return acct, nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodeKey(k, "PKCS8")
	if err != nil {
		return nil, err
	}
	return &acmeAccount{Server: a.Server, Email: a.Email, KeyPEM: string(keyPEM), key: k}, nil
}

// register creates the account at the CA (with the external account
// binding when the issuer has one) and stores it.
func (s *acmeSigner) register(ctx context.Context, client *lego.Client, iss *schemas.Issuer, acct *acmeAccount) error {
	a := iss.Spec.ACME
	var reg *acme.ExtendedAccount
	var err error
	if b := a.ExternalAccountBinding; b != nil {
		hmac, herr := s.eabKey(ctx, b)
		if herr != nil {
			return fmt.Errorf("the external account binding of issuer %s: %w", iss.Metadata.Name, herr)
		}
		reg, err = client.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: b.KeyID, HmacEncoded: hmac})
	} else {
		reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	}
	if err != nil {
		return fmt.Errorf("registering the ACME account of issuer %s at %s: %w", iss.Metadata.Name, a.Server, problemOf(err, nil))
	}
	acct.URI = reg.Location
	if err := s.store.Put(ctx, acmeAccountKey(iss.Metadata.Name), acct); err != nil {
		return fmt.Errorf("storing the ACME account of issuer %s: %w", iss.Metadata.Name, err)
	}
	return nil
}

// eabKey reads the EAB HMAC key from its file or Vault KV.
func (s *acmeSigner) eabKey(ctx context.Context, b *schemas.ACMEExternalAccountBinding) (string, error) {
	if b.HMACKeyFile != "" {
		return ReadSecretFile(b.HMACKeyFile)
	}
	if s.kvRead == nil {
		return "", fmt.Errorf("hmacKeyVaultKV %s needs the vault backend; use hmacKeyFile with the local one", b.HMACKeyVaultKV)
	}
	return s.kvRead(ctx, b.HMACKeyVaultKV)
}

// RotateACMEKey replaces the account key of an ACME issuer at its CA (a
// key rollover: the account, its orders and authorizations stay) and in
// the backend. An issuer without an account yet gets one.
func RotateACMEKey(ctx context.Context, b Backend, iss *schemas.Issuer) error {
	s, ok := acmeOf(b)
	if !ok || iss.Spec.ACME == nil {
		return fmt.Errorf("issuer %s is not an ACME issuer", iss.Metadata.Name)
	}
	hc, err := acmeHTTPClient(iss.Spec.ACME.CABundle)
	if err != nil {
		return err
	}
	if _, err := s.ensureAccount(ctx, iss, hc); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, err := s.account(ctx, iss.Metadata.Name, iss.Spec.ACME)
	if err != nil {
		return err
	}
	client, err := newLegoClient(acct, iss.Spec.ACME, hc)
	if err != nil {
		return err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := client.Registration.KeyRollover(ctx, k); err != nil {
		return fmt.Errorf("rolling the ACME account key of issuer %s over: %w", iss.Metadata.Name, problemOf(err, nil))
	}
	keyPEM, err := pki.EncodeKey(k, "PKCS8")
	if err != nil {
		return err
	}
	acct.KeyPEM, acct.key = string(keyPEM), k
	return s.store.Put(ctx, acmeAccountKey(iss.Metadata.Name), acct)
}

func acmeOf(b Backend) (*acmeSigner, bool) {
	switch x := b.(type) {
	case *Vault:
		return x.acmeSigner(), true
	case *Local:
		return x.acmeSigner(), true
	}
	return nil, false
}

func dnsProvider(d *schemas.ACMEDNS01) (challenge.Provider, error) {
	mk, ok := dnsProviders[d.Provider]
	if !ok {
		return nil, fmt.Errorf("DNS provider %q is not one certfleet carries; use one of %s", d.Provider, strings.Join(schemas.ACMEDNSProviders, ", "))
	}
	p, err := mk()
	if err != nil {
		return nil, fmt.Errorf("the %s DNS provider: %w (it reads its settings from the environment)", d.Provider, err)
	}
	return p, nil
}

// withTimeout bounds a DNS provider's propagation wait by the issuer's
// propagationTimeout (0: the provider's own).
func withTimeout(p challenge.Provider, timeout time.Duration) challenge.Provider {
	if timeout <= 0 {
		return p
	}
	interval := 2 * time.Second
	if t, ok := p.(challenge.ProviderTimeout); ok {
		_, interval = t.Timeout()
	}
	return timedProvider{p, timeout, interval}
}

type timedProvider struct {
	challenge.Provider
	timeout, interval time.Duration
}

func (t timedProvider) Timeout() (time.Duration, time.Duration) { return t.timeout, t.interval }

func acmeHTTPClient(caBundle string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caBundle != "" && !pool.AppendCertsFromPEM([]byte(caBundle)) {
		return nil, errors.New("the issuer's caBundle holds no PEM certificate")
	}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: pool},
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}, nil
}

// signedOf splits lego's bundle into the leaf and its chain.
func signedOf(res *certificate.Resource) (*Signed, error) {
	var blocks []string
	rest := res.Certificate
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			blocks = append(blocks, string(pem.EncodeToMemory(b)))
		}
	}
	if len(blocks) == 0 {
		return nil, errors.New("the ACME CA returned no certificate")
	}
	leaf, err := pki.ParseCertificate([]byte(blocks[0]))
	if err != nil {
		return nil, err
	}
	chain := blocks[1:]
	if len(chain) == 0 && len(res.IssuerCertificate) > 0 {
		chain = []string{string(res.IssuerCertificate)}
	}
	return &Signed{Certificate: blocks[0], Chain: chain, SerialNumber: pki.Serial(leaf.SerialNumber),
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}, nil
}

func certificateNames(csr *x509.CertificateRequest) []string {
	names := slices.Clone(csr.DNSNames)
	for _, ip := range csr.IPAddresses {
		names = append(names, ip.String())
	}
	if csr.Subject.CommonName != "" && !slices.Contains(names, csr.Subject.CommonName) {
		names = append([]string{csr.Subject.CommonName}, names...)
	}
	return names
}

// logSink drops lego's log lines: what matters reaches the report as errors.
type logSink struct{}

func (logSink) Write(p []byte) (int, error) { return len(p), nil }
