package backend

import "strings"

// issuerCRLTemplate is where Vault serves the DER CRL of the issuer that
// signed a certificate, written with Vault's AIA template ({{issuer_id}} is
// filled in per issuance when config/urls has enable_templating).
const issuerCRLTemplate = "/issuer/{{issuer_id}}/crl/der"

// templateCRLURLs rewrites each URL that names mount's default CRL
// (".../<mount>/crl") into the CRL of the issuer that signs the certificate.
// Vault lists a revoked serial on its issuer's CRL only, so after a rotation
// the mount's CRL (the new issuer's) would not hold the old leaves a relying
// party looks up. Other URLs (a CDN, an operator's own template) are kept.
func templateCRLURLs(mount string, urls []string) []string {
	if urls == nil {
		return nil
	}
	suffix := "/" + strings.Trim(mount, "/") + "/crl"
	out := make([]string, len(urls))
	for i, u := range urls {
		if base, ok := strings.CutSuffix(u, suffix); ok {
			u = base + suffix[:len(suffix)-len("/crl")] + issuerCRLTemplate
		}
		out[i] = u
	}
	return out
}

// untemplateCRLURLs is templateCRLURLs' inverse: the URLs as the authority
// declares them, so a refresh or an adoption reads back what was written.
func untemplateCRLURLs(mount string, urls []string) []string {
	if urls == nil {
		return nil
	}
	suffix := "/" + strings.Trim(mount, "/") + issuerCRLTemplate
	out := make([]string, len(urls))
	for i, u := range urls {
		if base, ok := strings.CutSuffix(u, suffix); ok {
			u = base + "/" + strings.Trim(mount, "/") + "/crl"
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
