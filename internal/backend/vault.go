package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

// Vault keeps authorities in PKI mounts (keys generated inside Vault, type
// internal, never read back), issuers as PKI roles, and the catalog and
// records in a KV v2 mount, so every change is versioned by Vault.
type Vault struct {
	client *vaultapi.Client
	mount  string
	addr   string

	mu        sync.Mutex
	kvReady   bool
	pkiMounts map[string]bool

	acmeOnce sync.Once
	acme     *acmeSigner
}

// acmeSigner orders ACME certificates with the accounts in the catalog
// mount; EAB keys may come from any KV v2 secret the token reads.
func (v *Vault) acmeSigner() *acmeSigner {
	v.acmeOnce.Do(func() { v.acme = &acmeSigner{store: v, kvRead: v.readKVField} })
	return v.acme
}

// readKVField reads mount/path#field from a KV v2 secret.
func (v *Vault) readKVField(ctx context.Context, ref string) (string, error) {
	loc, field, _ := strings.Cut(ref, "#")
	mount, path, ok := strings.Cut(loc, "/")
	if !ok || field == "" {
		return "", fmt.Errorf("%s is not mount/path#field", ref)
	}
	s, err := v.client.KVv2(mount).Get(ctx, path)
	if err != nil {
		return "", fmt.Errorf("reading %s from Vault: %w", loc, err)
	}
	val, ok := s.Data[field].(string)
	if !ok || val == "" {
		return "", fmt.Errorf("%s has no field %s", loc, field)
	}
	return val, nil
}

// OpenVault connects to Vault; c must have been completed by WithEnv.
func OpenVault(_ context.Context, c VaultConfig) (*Vault, error) {
	if err := c.Check("the vault settings"); err != nil {
		return nil, err
	}
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	cfg.Address = c.Address
	cfg.Timeout = c.Timeout
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultRequestTimeout
	}
	// A 412 from a performance standby or a 5xx is retried; a pass should not
	// fail on one dropped request.
	cfg.MaxRetries = 3
	if c.CACert != "" || c.SkipTLSVerify {
		if err := cfg.ConfigureTLS(&vaultapi.TLSConfig{CACert: c.CACert, Insecure: c.SkipTLSVerify}); err != nil {
			return nil, fmt.Errorf("vault TLS settings: %w", err)
		}
	}
	client, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	client.SetToken(c.Token)
	if c.Namespace != "" {
		client.SetNamespace(c.Namespace)
	}
	return &Vault{client: client, mount: c.CatalogMount, addr: c.Address, pkiMounts: map[string]bool{}}, nil
}

// Client is the underlying Vault client, for delivery to Vault KV targets.
func (v *Vault) Client() *vaultapi.Client { return v.client }

func (v *Vault) Describe() string { return "vault at " + v.addr }

// ---------------------------------------------------------------------------
// Store: KV v2

func (v *Vault) ensureKV(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.kvReady {
		return nil
	}
	if err := ensureMount(ctx, v.client, v.mount, &vaultapi.MountInput{
		Type: "kv", Description: "certfleet catalog and records", Options: map[string]string{"version": "2"},
	}); err != nil {
		return fmt.Errorf("creating the catalog mount %s: %w", v.mount, err)
	}
	v.kvReady = true
	return nil
}

// ensureMount mounts a secrets engine at path unless something is mounted there.
func ensureMount(ctx context.Context, c *vaultapi.Client, path string, in *vaultapi.MountInput) error {
	mounts, err := c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return err
	}
	if m, ok := mounts[strings.Trim(path, "/")+"/"]; ok {
		if m.Type != in.Type {
			return fmt.Errorf("%s is mounted as %s, not %s", path, m.Type, in.Type)
		}
		return nil
	}
	return c.Sys().MountWithContext(ctx, path, in)
}

// Get reads the current version of key straight into out: the response is
// decoded once, by encoding/json, where the client's KVv2 Get would decode it
// into maps and out would be filled by marshalling those again — at a page of
// inventory per read that was a fifth of a one-shot no-op pass's CPU.
func (v *Vault) Get(ctx context.Context, key string, out any) error {
	if err := checkKey(key); err != nil {
		return err
	}
	path := v.mount + "/data/" + key
	// The raw request leaves out the client's timeout; the wrapped one had it.
	if t := v.client.ClientTimeout(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	resp, err := v.client.Logical().ReadRawWithContext(ctx, path)
	if resp != nil {
		// Read to the end, so that the connection goes back to the pool.
		defer func() { _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close() }()
	}
	// A missing key and a soft-deleted or destroyed current version are both
	// a 404 (the latter with the version's metadata and no data).
	if (resp != nil && resp.StatusCode == http.StatusNotFound) || isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading %s from Vault: %w", path, err)
	}
	// out is decoded in place: an interface holding a non-nil pointer is
	// decoded into what it points at, and set to nil by a JSON null.
	var env struct {
		Data *struct {
			Data any `json:"data"`
		} `json:"data"`
	}
	env.Data = &struct {
		Data any `json:"data"`
	}{Data: out}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("decoding %s from Vault: %w", path, err)
	}
	if env.Data == nil || env.Data.Data == nil {
		return fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return nil
}

func (v *Vault) Put(ctx context.Context, key string, in any) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := v.ensureKV(ctx); err != nil {
		return err
	}
	data, err := toMap(in)
	if err != nil {
		return err
	}
	_, err = v.client.KVv2(v.mount).Put(ctx, key, data)
	return err
}

// Delete soft-deletes the current version: Vault keeps the history.
func (v *Vault) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := v.client.KVv2(v.mount).Delete(ctx, key)
	if isStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// Revoke revokes serial in a's mount: Vault rebuilds the mount's CRL. Its
// revoke endpoint takes no reason code; the caller's audit log keeps why.
func (v *Vault) Revoke(ctx context.Context, a *schemas.Authority, serial string) error {
	_, err := v.write(ctx, a.Spec.Mount+"/revoke", map[string]any{"serial_number": serial})
	return err
}

// Purge destroys the key's metadata and every version (backend.Purge).
func (v *Vault) Purge(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := v.client.KVv2(v.mount).DeleteMetadata(ctx, key)
	if isStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

func (v *Vault) List(ctx context.Context, prefix string) ([]string, error) {
	s, err := v.client.Logical().ListWithContext(ctx, v.mount+"/metadata/"+prefix)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return nil, nil
		}
		return nil, err
	}
	if s == nil || s.Data == nil {
		return nil, nil
	}
	raw, _ := s.Data["keys"].([]any)
	out := make([]string, 0, len(raw))
	for _, k := range raw {
		if ks, ok := k.(string); ok && !strings.HasSuffix(ks, "/") {
			out = append(out, ks)
		}
	}
	sort.Strings(out)
	return out, nil
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func isStatus(err error, code int) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}

// ---------------------------------------------------------------------------
// PKI

func (v *Vault) write(ctx context.Context, path string, data map[string]any) (map[string]any, error) {
	s, err := v.client.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		return nil, fmt.Errorf("vault %s: %w", path, err)
	}
	if s == nil {
		return map[string]any{}, nil
	}
	return s.Data, nil
}

func (v *Vault) read(ctx context.Context, path string) (map[string]any, error) {
	s, err := v.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
		}
		return nil, fmt.Errorf("vault %s: %w", path, err)
	}
	if s == nil || s.Data == nil {
		return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	return s.Data, nil
}

func (v *Vault) ensurePKIMount(ctx context.Context, a *schemas.Authority) error {
	// The mount's max lease TTL must cover the CA certificate itself.
	ttl := a.Spec.Lifetime() + 24*time.Hour
	return ensureMount(ctx, v.client, a.Spec.Mount, &vaultapi.MountInput{
		Type: "pki", Description: "certfleet authority " + a.Metadata.Name,
		Config: vaultapi.MountConfigInput{MaxLeaseTTL: fmt.Sprintf("%ds", int64(ttl.Seconds()))},
	})
}

func subjectParams(a *schemas.Authority, m map[string]any) {
	m["common_name"] = a.Spec.CommonName
	if s := a.Spec.Subject; s != nil {
		m["organization"] = s.Organizations
		m["ou"] = s.OrganizationalUnits
		m["country"] = s.Countries
		m["locality"] = s.Localities
		m["province"] = s.Provinces
		m["street_address"] = s.StreetAddresses
		m["postal_code"] = s.PostalCodes
	}
}

func keyParams(a *schemas.Authority, m map[string]any) {
	kt := a.Spec.KeyType
	if kt == "" {
		kt = "ec"
	}
	m["key_type"] = kt
	if a.Spec.KeyBits != 0 {
		m["key_bits"] = a.Spec.KeyBits
	}
}

func caParams(a *schemas.Authority, m map[string]any) {
	m["ttl"] = fmt.Sprintf("%ds", int64(a.Spec.Lifetime().Seconds()))
	if a.Spec.MaxPathLength != nil {
		m["max_path_length"] = *a.Spec.MaxPathLength
	}
	if len(a.Spec.PermittedDNSDomains) > 0 {
		m["permitted_dns_domains"] = a.Spec.PermittedDNSDomains
	}
}

func issuerName(a *schemas.Authority) string {
	return fmt.Sprintf("%s-%d", a.Metadata.Name, time.Now().UnixNano())
}

func (v *Vault) CreateAuthority(ctx context.Context, a, parent *schemas.Authority) (schemas.AuthorityStatus, error) {
	if err := v.ensurePKIMount(ctx, a); err != nil {
		return schemas.AuthorityStatus{}, fmt.Errorf("mounting %s: %w", a.Spec.Mount, err)
	}
	if err := v.newIssuer(ctx, a, parent); err != nil {
		return schemas.AuthorityStatus{}, err
	}
	if err := v.ConfigureAuthority(ctx, a); err != nil {
		return schemas.AuthorityStatus{}, err
	}
	return v.ReadAuthority(ctx, a)
}

func (v *Vault) RotateAuthority(ctx context.Context, a, parent *schemas.Authority) (schemas.AuthorityStatus, error) {
	if err := v.newIssuer(ctx, a, parent); err != nil {
		return schemas.AuthorityStatus{}, err
	}
	return v.ReadAuthority(ctx, a)
}

// newIssuer generates a key inside Vault and a CA certificate for it, then
// makes it the mount's default issuer.
func (v *Vault) newIssuer(ctx context.Context, a, parent *schemas.Authority) error {
	mount := a.Spec.Mount
	name := issuerName(a)
	var issuerID string
	switch a.Spec.Type {
	case schemas.AuthorityRoot:
		p := map[string]any{"issuer_name": name, "key_name": name}
		subjectParams(a, p)
		keyParams(a, p)
		caParams(a, p)
		out, err := v.write(ctx, mount+"/root/generate/internal", p)
		if err != nil {
			return err
		}
		if issuerID, err = stringField(out, mount+"/root/generate/internal", "issuer_id"); err != nil {
			return err
		}
	case schemas.AuthorityIntermediate:
		if parent == nil {
			return fmt.Errorf("intermediate authority %s needs its parent", a.Metadata.Name)
		}
		p := map[string]any{"key_name": name}
		subjectParams(a, p)
		keyParams(a, p)
		out, err := v.write(ctx, mount+"/intermediate/generate/internal", p)
		if err != nil {
			return err
		}
		csr, err := stringField(out, mount+"/intermediate/generate/internal", "csr")
		if err != nil {
			return err
		}
		sp := map[string]any{"csr": csr, "format": "pem"}
		subjectParams(a, sp)
		caParams(a, sp)
		signed, err := v.write(ctx, parent.Spec.Mount+"/root/sign-intermediate", sp)
		if err != nil {
			return fmt.Errorf("parent %s signing %s: %w", parent.Metadata.Name, a.Metadata.Name, err)
		}
		bundle, err := stringField(signed, parent.Spec.Mount+"/root/sign-intermediate", "certificate")
		if err != nil {
			return err
		}
		for _, c := range stringList(signed["ca_chain"]) {
			bundle += "\n" + c
		}
		imported, err := v.write(ctx, mount+"/intermediate/set-signed", map[string]any{"certificate": bundle})
		if err != nil {
			return err
		}
		// The bundle imports the parent's certificates too (without keys); the
		// new issuer is the one that has a key.
		mapping, _ := imported["mapping"].(map[string]any)
		for id, key := range mapping {
			if k, _ := key.(string); k != "" {
				issuerID = id
			}
		}
		if issuerID != "" {
			if _, err := v.write(ctx, mount+"/issuer/"+issuerID, map[string]any{"issuer_name": name}); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown authority type %q", a.Spec.Type)
	}
	if issuerID == "" {
		return fmt.Errorf("vault returned no issuer for %s", a.Metadata.Name)
	}
	_, err := v.write(ctx, mount+"/config/issuers", map[string]any{"default": issuerID})
	return err
}

// DescribeAuthority reads the URLs from the mount's config/urls: Vault does
// not necessarily write them into its CA certificates. The per-issuer CRL
// URLs ConfigureAuthority writes read back as the mount's CRL they stand for.
func (v *Vault) DescribeAuthority(ctx context.Context, a *schemas.Authority) error {
	if err := describe(ctx, v, a); err != nil {
		return err
	}
	urls, err := v.read(ctx, a.Spec.Mount+"/config/urls")
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	list := func(k string) []string {
		if l := stringList(urls[k]); len(l) > 0 {
			return l
		}
		return nil // no URLs, as the spec of an authority that sets none
	}
	a.Spec.IssuingCertificates = caURL.untemplate(a.Spec.Mount, list("issuing_certificates"))
	a.Spec.CRLDistributionPoints = crlURL.untemplate(a.Spec.Mount, list("crl_distribution_points"))
	a.Spec.OCSPServers = list("ocsp_servers")
	return nil
}

// ConfigureAuthority writes the mount's config/urls. A URL naming the
// mount's CRL or CA is written as the signing issuer's (issuerURL), so a
// leaf of a previous issuer, revoked after a rotation, is found on the CRL
// its crlDistributionPoints names, and its caIssuers URL fetches the CA
// that signed it. Vault then leaves AIA URLs out of a new root's
// certificate, where they would only name the root itself.
func (v *Vault) ConfigureAuthority(ctx context.Context, a *schemas.Authority) error {
	ca := caURL.template(a.Spec.Mount, a.Spec.IssuingCertificates)
	crl := crlURL.template(a.Spec.Mount, a.Spec.CRLDistributionPoints)
	_, err := v.write(ctx, a.Spec.Mount+"/config/urls", map[string]any{
		"issuing_certificates":    nonNil(ca),
		"crl_distribution_points": nonNil(crl),
		"ocsp_servers":            nonNil(a.Spec.OCSPServers),
		"enable_templating":       templated(ca, crl, a.Spec.OCSPServers),
	})
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func stringList(v any) []string {
	raw, _ := v.([]any)
	out := make([]string, 0, len(raw))
	for _, x := range raw {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (v *Vault) ReadAuthority(ctx context.Context, a *schemas.Authority) (schemas.AuthorityStatus, error) {
	def, err := v.read(ctx, a.Spec.Mount+"/issuer/default")
	if err != nil {
		return schemas.AuthorityStatus{}, err
	}
	id, err := stringField(def, a.Spec.Mount+"/issuer/default", "issuer_id")
	if err != nil {
		return schemas.AuthorityStatus{}, err
	}
	certPEM, err := stringField(def, a.Spec.Mount+"/issuer/default", "certificate")
	if err != nil {
		return schemas.AuthorityStatus{}, err
	}
	st, err := statusFromPEM(id, certPEM, stringList(def["ca_chain"]))
	if err != nil {
		return st, err
	}
	list, err := v.client.Logical().ListWithContext(ctx, a.Spec.Mount+"/issuers")
	if err != nil {
		return st, fmt.Errorf("listing issuers of %s: %w", a.Spec.Mount, err)
	}
	now := time.Now()
	if list != nil {
		for _, other := range stringList(list.Data["keys"]) {
			if other == id {
				continue
			}
			data, err := v.read(ctx, a.Spec.Mount+"/issuer/"+other)
			if err != nil {
				return st, err
			}
			if k, _ := data["key_id"].(string); k == "" {
				continue // an imported parent certificate, not one of ours
			}
			pemCert, _ := data["certificate"].(string)
			c, err := pki.ParseCertificate([]byte(pemCert))
			if err != nil || c.NotAfter.Before(now) {
				continue
			}
			st.PreviousIssuers = append(st.PreviousIssuers, schemas.PreviousIssuer{IssuerID: other, Certificate: pemCert, NotAfter: c.NotAfter.UTC()})
		}
	}
	sort.Slice(st.PreviousIssuers, func(i, j int) bool { return st.PreviousIssuers[i].NotAfter.After(st.PreviousIssuers[j].NotAfter) })
	return st, nil
}

// statusFromPEM describes a CA certificate; chain lists the certificates
// above it (a leading copy of the certificate itself is dropped).
func statusFromPEM(issuerID, certPEM string, chain []string) (schemas.AuthorityStatus, error) {
	c, err := pki.ParseCertificate([]byte(certPEM))
	if err != nil {
		return schemas.AuthorityStatus{}, fmt.Errorf("reading the CA certificate: %w", err)
	}
	var above []string
	for _, p := range chain {
		if strings.TrimSpace(p) != strings.TrimSpace(certPEM) {
			above = append(above, strings.TrimSpace(p)+"\n")
		}
	}
	nb, na := c.NotBefore.UTC(), c.NotAfter.UTC()
	return schemas.AuthorityStatus{
		IssuerID: issuerID, Certificate: strings.TrimSpace(certPEM) + "\n", CAChain: above,
		SerialNumber: pki.Serial(c.SerialNumber), NotBefore: &nb, NotAfter: &na,
	}, nil
}

func (v *Vault) DeleteAuthority(ctx context.Context, a *schemas.Authority) error {
	err := v.client.Sys().UnmountWithContext(ctx, a.Spec.Mount)
	if isStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

func rolePath(iss *schemas.Issuer, a *schemas.Authority) string {
	return a.Spec.Mount + "/roles/" + iss.Spec.RoleName(iss.Metadata.Name)
}

func (v *Vault) PutRole(ctx context.Context, iss *schemas.Issuer, a *schemas.Authority) error {
	if iss.Spec.ACME != nil {
		return nil // an ACME issuer has no role: its CA decides
	}
	s := iss.Spec
	kt := s.KeyType
	if kt == "" {
		kt = "any"
	}
	p := map[string]any{
		"issuer_ref":                  "default",
		"allowed_domains":             nonNil(s.AllowedDomains),
		"allow_subdomains":            s.AllowSubdomains,
		"allow_glob_domains":          s.AllowGlobDomains,
		"allow_bare_domains":          s.AllowBareDomains,
		"allow_wildcard_certificates": s.AllowWildcardCertificates,
		"allow_any_name":              s.AllowAnyName,
		"allowed_uri_sans":            nonNil(s.AllowedURISANs),
		"allow_ip_sans":               s.AllowIPSANs,
		"allow_localhost":             false,
		"enforce_hostnames":           true,
		"require_cn":                  false,
		"key_type":                    kt,
		"key_bits":                    s.KeyBits,
		"server_flag":                 s.Server(),
		"client_flag":                 s.Client(),
		"ext_key_usage":               nonNil(s.ExtKeyUsage),
		"no_store":                    s.NoStore,
		// The CSR carries the names; the role decides whether they are allowed.
		"use_csr_common_name": true,
		"use_csr_sans":        true,
	}
	if d, _ := s.TTL.Parse(); d > 0 {
		p["ttl"] = fmt.Sprintf("%ds", int64(d.Seconds()))
	}
	if d, _ := s.MaxTTL.Parse(); d > 0 {
		p["max_ttl"] = fmt.Sprintf("%ds", int64(d.Seconds()))
	}
	_, err := v.write(ctx, rolePath(iss, a), p)
	return err
}

func (v *Vault) ReadRole(ctx context.Context, iss *schemas.Issuer, a *schemas.Authority) (schemas.IssuerSpec, error) {
	if iss.Spec.ACME != nil {
		// An ACME issuer has no role: the CA's own policy stands in for it.
		return iss.Spec, nil
	}
	data, err := v.read(ctx, rolePath(iss, a))
	if err != nil {
		return schemas.IssuerSpec{}, err
	}
	flag := func(k string) bool { b, _ := data[k].(bool); return b }
	server, client := flag("server_flag"), flag("client_flag")
	keyType, _ := data["key_type"].(string)
	return schemas.IssuerSpec{
		Authority: iss.Spec.Authority, Role: iss.Spec.Role,
		AllowedDomains: stringList(data["allowed_domains"]), AllowSubdomains: flag("allow_subdomains"),
		AllowGlobDomains: flag("allow_glob_domains"), AllowBareDomains: flag("allow_bare_domains"),
		AllowWildcardCertificates: flag("allow_wildcard_certificates"), AllowAnyName: flag("allow_any_name"),
		AllowedURISANs: stringList(data["allowed_uri_sans"]), AllowIPSANs: flag("allow_ip_sans"),
		KeyType: keyType, KeyBits: int(number(data["key_bits"])),
		TTL: seconds(number(data["ttl"])), MaxTTL: seconds(number(data["max_ttl"])),
		ServerFlag: &server, ClientFlag: &client, ExtKeyUsage: stringList(data["ext_key_usage"]),
		NoStore: flag("no_store"),
	}, nil
}

// number reads a JSON number from a Vault response (the client decodes
// with UseNumber); anything else is 0.
func number(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return i
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}

// seconds is a lifetime Vault reports in seconds; 0 is "Vault's default".
func seconds(n int64) schemas.Duration {
	if n == 0 {
		return ""
	}
	return hours(time.Duration(n) * time.Second)
}

func (v *Vault) DeleteRole(ctx context.Context, iss *schemas.Issuer, a *schemas.Authority) error {
	if iss.Spec.ACME != nil {
		return nil
	}
	_, err := v.client.Logical().DeleteWithContext(ctx, rolePath(iss, a))
	if isStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

func (v *Vault) Sign(ctx context.Context, iss *schemas.Issuer, a *schemas.Authority, csrPEM []byte, ttl time.Duration) (*Signed, error) {
	if iss.Spec.ACME != nil {
		return v.acmeSigner().Sign(ctx, iss, csrPEM)
	}
	path := a.Spec.Mount + "/sign/" + iss.Spec.RoleName(iss.Metadata.Name)
	out, err := v.write(ctx, path, map[string]any{
		"csr": string(csrPEM), "ttl": fmt.Sprintf("%ds", int64(ttl.Seconds())), "format": "pem",
	})
	if err != nil {
		return nil, err
	}
	certPEM, err := stringField(out, path, "certificate")
	if err != nil {
		return nil, err
	}
	c, err := pki.ParseCertificate([]byte(certPEM))
	if err != nil {
		return nil, fmt.Errorf("vault returned an unreadable certificate at %s: %w", path, err)
	}
	chain := stringList(out["ca_chain"])
	if len(chain) == 0 {
		if ca, _ := out["issuing_ca"].(string); ca != "" {
			chain = []string{ca}
		}
	}
	return &Signed{Certificate: strings.TrimSpace(certPEM) + "\n", Chain: chain, SerialNumber: pki.Serial(c.SerialNumber),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC()}, nil
}

// stringField reads a string field of a Vault response: a response without
// it, or with another type, is an error naming the path and the field, never
// a panic.
func stringField(data map[string]any, path, field string) (string, error) {
	v, ok := data[field]
	if !ok || v == nil {
		return "", fmt.Errorf("vault's response from %s has no %q", path, field)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("vault's response from %s has %q of type %T, want a string", path, field, v)
	}
	return s, nil
}
