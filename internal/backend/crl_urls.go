package backend

import "strings"

// issuerURL is a URL under a mount that names what its default issuer
// serves, and the same for the issuer that signed a certificate, written
// with Vault's AIA template ({{issuer_id}} is filled in per issuance when
// config/urls has enable_templating).
type issuerURL struct{ mounts, issuers string }

var (
	// crlURL: the DER CRL. Vault lists a revoked serial on its issuer's
	// CRL only, so after a rotation the mount's CRL (the new issuer's)
	// would not hold the old leaves a relying party looks up.
	crlURL = issuerURL{"/crl", "/issuer/{{issuer_id}}/crl/der"}
	// caURL: the DER certificate (AIA caIssuers). After a rotation the
	// mount's CA is the new one, which did not sign the old leaves, so a
	// client fetching a leaf's missing issuer would get the wrong CA.
	caURL = issuerURL{"/ca", "/issuer/{{issuer_id}}/der"}
)

// template rewrites each URL that names mount's default issuer's (".../<mount>/crl",
// ".../<mount>/ca") into the signing issuer's. Other URLs (a CDN, an
// operator's own template) are kept.
func (k issuerURL) template(mount string, urls []string) []string {
	return rewrite(urls, "/"+strings.Trim(mount, "/"), k.mounts, k.issuers)
}

// untemplate is template's inverse: the URLs as the authority declares
// them, so a refresh or an adoption reads back what was written.
func (k issuerURL) untemplate(mount string, urls []string) []string {
	return rewrite(urls, "/"+strings.Trim(mount, "/"), k.issuers, k.mounts)
}

func rewrite(urls []string, mount, from, to string) []string {
	if urls == nil {
		return nil
	}
	out := make([]string, len(urls))
	for i, u := range urls {
		if base, ok := strings.CutSuffix(u, mount+from); ok {
			u = base + mount + to
		}
		out[i] = u
	}
	return out
}

// templated reports whether any URL uses one of Vault's AIA templates, which
// Vault fills in only with enable_templating (and otherwise rejects).
func templated(lists ...[]string) bool {
	for _, l := range lists {
		for _, u := range l {
			if strings.Contains(u, "{{") {
				return true
			}
		}
	}
	return false
}
