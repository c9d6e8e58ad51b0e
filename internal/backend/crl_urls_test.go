package backend

import (
	"reflect"
	"testing"
)

func TestCRLURLsNamingTheMountsCRLBecomeTheSigningIssuers(t *testing.T) {
	for _, c := range []struct {
		name, mount string
		declared    []string
		written     []string
	}{
		{"no URLs stay none", "pki", nil, nil},
		{"the mount's CRL becomes the issuer's DER CRL", "pki",
			[]string{"https://vault.example:8200/v1/pki/crl"},
			[]string{"https://vault.example:8200/v1/pki/issuer/{{issuer_id}}/crl/der"}},
		{"a nested mount and a namespace in the path", "team/pki",
			[]string{"https://vault.example/v1/ns1/team/pki/crl"},
			[]string{"https://vault.example/v1/ns1/team/pki/issuer/{{issuer_id}}/crl/der"}},
		{"another mount's CRL is kept", "pki",
			[]string{"https://vault.example/v1/other-pki/crl"},
			[]string{"https://vault.example/v1/other-pki/crl"}},
		{"a CDN and an operator's own template are kept", "pki",
			[]string{"http://crl.example/root.crl", "https://vault.example/v1/pki/crl/pem", "{{cluster_aia_path}}/issuer/{{issuer_id}}/crl/der"},
			[]string{"http://crl.example/root.crl", "https://vault.example/v1/pki/crl/pem", "{{cluster_aia_path}}/issuer/{{issuer_id}}/crl/der"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := crlURL.template(c.mount, c.declared)
			if !reflect.DeepEqual(got, c.written) {
				t.Errorf("written %q, want %q", got, c.written)
			}
			if back := crlURL.untemplate(c.mount, got); !reflect.DeepEqual(back, c.declared) {
				t.Errorf("read back as %q, declared %q", back, c.declared)
			}
		})
	}
}

func TestCAURLsNamingTheMountsCABecomeTheSigningIssuers(t *testing.T) {
	for _, c := range []struct {
		name, mount string
		declared    []string
		written     []string
	}{
		{"no URLs stay none", "pki", nil, nil},
		{"the mount's CA becomes the issuer's DER certificate", "pki",
			[]string{"https://vault.example:8200/v1/pki/ca"},
			[]string{"https://vault.example:8200/v1/pki/issuer/{{issuer_id}}/der"}},
		{"a nested mount", "team/pki",
			[]string{"https://vault.example/v1/team/pki/ca"},
			[]string{"https://vault.example/v1/team/pki/issuer/{{issuer_id}}/der"}},
		{"another mount's CA, the PEM form and a CDN are kept", "pki",
			[]string{"https://vault.example/v1/other-pki/ca", "https://vault.example/v1/pki/ca/pem", "http://aia.example/root.crt"},
			[]string{"https://vault.example/v1/other-pki/ca", "https://vault.example/v1/pki/ca/pem", "http://aia.example/root.crt"}},
		{"a CRL URL is not a CA URL", "pki",
			[]string{"https://vault.example/v1/pki/crl"},
			[]string{"https://vault.example/v1/pki/crl"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := caURL.template(c.mount, c.declared)
			if !reflect.DeepEqual(got, c.written) {
				t.Errorf("written %q, want %q", got, c.written)
			}
			if back := caURL.untemplate(c.mount, got); !reflect.DeepEqual(back, c.declared) {
				t.Errorf("read back as %q, declared %q", back, c.declared)
			}
		})
	}
}

func TestTemplatingIsEnabledOnlyForATemplate(t *testing.T) {
	if templated([]string{"http://a/ca"}, nil, []string{"http://a/ocsp"}) {
		t.Error("plain URLs enabled templating")
	}
	if !templated(nil, []string{"http://a/v1/pki/issuer/{{issuer_id}}/crl/der"}) {
		t.Error("a template did not enable templating: Vault would reject it")
	}
}
