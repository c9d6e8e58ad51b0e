package schemas

import (
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Parse reads a duration: Go's syntax plus "d" for days ("90d", "1d12h").
// An empty Duration is 0.
func (d Duration) Parse() (time.Duration, error) {
	s := strings.TrimSpace(string(d))
	if s == "" {
		return 0, nil
	}
	var total time.Duration
	// Days are a prefix "<n>d"; Go's parser reads the rest.
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration", string(d))
		}
		if int64(n) > maxDays {
			return 0, fmt.Errorf("%q is too long a duration (at most %dd)", string(d), maxDays)
		}
		total = time.Duration(n) * day
		s = s[i+1:]
		if s == "" {
			return total, nil
		}
	}
	rest, err := time.ParseDuration(s)
	if err != nil || rest < 0 {
		return 0, fmt.Errorf("%q is not a duration", string(d))
	}
	if rest > math.MaxInt64-total {
		return 0, fmt.Errorf("%q is too long a duration (at most %dd)", string(d), maxDays)
	}
	return total + rest, nil
}

const day = 24 * time.Hour

// maxDays is the most days a time.Duration holds (about 292 years).
const maxDays = math.MaxInt64 / int64(day)

// FormatDuration writes a duration the way people read them: whole days as
// "90d", otherwise Go's form without zero units ("36h", not "36h0m0s").
// Parse reads back what it writes.
func FormatDuration(d time.Duration) string {
	if d > 0 && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	s := d.String()
	if d > 0 && d%time.Minute == 0 {
		s = strings.TrimSuffix(s, "0s")
		if d%time.Hour == 0 {
			s = strings.TrimSuffix(s, "0m")
		}
	}
	return s
}

const durationHint = `write a duration such as "2160h", "90d" or "1d12h"`

// checkDNSName checks a DNS name per RFC 1123, allowing one leading "*.".
// It returns what is wrong, or "".
func checkDNSName(name string, allowWildcard bool) string {
	if name == "" {
		return "is empty"
	}
	if strings.HasPrefix(name, "*.") && allowWildcard {
		name = name[2:]
	}
	if len(name) > 253 {
		return fmt.Sprintf("is %d characters long, more than 253", len(name))
	}
	for _, label := range strings.Split(name, ".") {
		if p := checkLabel(label); p != "" {
			return p
		}
	}
	return ""
}

func checkLabel(label string) string {
	switch {
	case label == "":
		return "has an empty label (two dots in a row, or a dot at an end)"
	case label == "*":
		return `has "*" where only a leading "*." is allowed`
	case len(label) > 63:
		return fmt.Sprintf("has a label of %d characters, more than 63", len(label))
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Sprintf("has label %q that starts or ends with \"-\"", label)
	}
	for _, r := range label {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
		case r >= 'A' && r <= 'Z':
			return fmt.Sprintf("has upper-case letters in label %q", label)
		default:
			return fmt.Sprintf("has %q in label %q", r, label)
		}
	}
	return ""
}

const dnsHint = `use lower-case letters, digits and "-" in dot-separated labels (RFC 1123), optionally starting with "*."`

// checkObjectName checks a metadata.name: a DNS-1123 subdomain, as
// Kubernetes names are.
func checkObjectName(name string) string {
	if name == "" {
		return "is missing"
	}
	if strings.HasPrefix(name, "*") {
		return "starts with \"*\""
	}
	return checkDNSName(name, false)
}

// checkLabelName checks a DNS-1123 label (namespaces).
func checkLabelName(s string) string {
	if s == "" {
		return "is missing"
	}
	return checkLabel(s)
}

// checkURI checks a URI SAN; spiffe:// URIs must be SPIFFE IDs.
func checkURI(s string) (problem, hint string) {
	if strings.HasPrefix(strings.ToLower(s), "spiffe:") {
		if _, err := spiffeid.FromString(s); err != nil {
			return "is not a valid SPIFFE ID: " + err.Error(),
				`write spiffe://<trust-domain>/<path>: a lower-case trust domain, path segments without "." or ".." or empty ones, no query or fragment`
		}
		return "", ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "is not a valid URI: " + strings.TrimPrefix(err.Error(), "parse "), "write an absolute URI such as https://example.com/path"
	}
	if u.Scheme == "" {
		return "is not an absolute URI (no scheme)", "write an absolute URI such as https://example.com/path or spiffe://trust.domain/path"
	}
	return "", ""
}

func checkEmail(s string) string {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "is not a bare e-mail address"
	}
	return ""
}

func checkIP(s string) string {
	if net.ParseIP(s) == nil {
		return "is not an IP address"
	}
	return ""
}

// Usages are cert-manager's key usage names; certfleet accepts the same.
var Usages = []KeyUsage{
	"signing", "digital signature", "content commitment", "key encipherment", "key agreement",
	"data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
	"server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
	"ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
}

var usageSet = func() map[KeyUsage]bool {
	m := map[KeyUsage]bool{}
	for _, u := range Usages {
		m[u] = true
	}
	return m
}()

func usageNames() []string {
	out := make([]string, len(Usages))
	for i, u := range Usages {
		out[i] = string(u)
	}
	return out
}

// KeySizes lists the sizes each algorithm allows; the first is the default.
// RSA below 2048 is not on the list: it is a floor no policy can lower.
var KeySizes = map[KeyAlgorithm][]int{
	RSA:     {2048, 3072, 4096},
	ECDSA:   {256, 384, 521},
	Ed25519: {0},
}

// checkKey checks an algorithm/size pair; size 0 means the default.
func checkKey(alg KeyAlgorithm, size int) (problem, hint string) {
	sizes, ok := KeySizes[alg]
	if !ok {
		return fmt.Sprintf("unknown algorithm %s", quote(string(alg))), "use RSA, ECDSA or Ed25519"
	}
	if size == 0 || alg == Ed25519 {
		return "", ""
	}
	for _, s := range sizes {
		if s == size {
			return "", ""
		}
	}
	if alg == RSA && size < 2048 {
		return fmt.Sprintf("RSA key size %d is below 2048, a floor no policy can lower", size), "use " + orList(sizes)
	}
	return fmt.Sprintf("%s keys do not come in size %d", alg, size), "use " + orList(sizes)
}

// orList writes sizes as "256, 384 or 521".
func orList(sizes []int) string {
	s := make([]string, len(sizes))
	for i, n := range sizes {
		s[i] = strconv.Itoa(n)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// SignatureAlgorithms lists the signature algorithms a certificate may pin.
// SHA-1 and MD5 are absent on purpose: a floor no policy can lower.
var SignatureAlgorithms = []string{
	"SHA256WithRSA", "SHA384WithRSA", "SHA512WithRSA",
	"ECDSAWithSHA256", "ECDSAWithSHA384", "ECDSAWithSHA512",
	"PureEd25519",
}

func checkSignatureAlgorithm(s string) (problem, hint string) {
	for _, a := range SignatureAlgorithms {
		if a == s {
			return "", ""
		}
	}
	up := strings.ToUpper(s)
	if strings.Contains(up, "SHA1") || strings.Contains(up, "SHA-1") || strings.Contains(up, "MD5") || strings.Contains(up, "MD2") {
		return fmt.Sprintf("signature algorithm %s is weak (SHA-1/MD5), a floor no policy can lower", quote(s)),
			"use SHA256WithRSA or ECDSAWithSHA256 or stronger"
	}
	return fmt.Sprintf("unknown signature algorithm %s", quote(s)), "use one of " + strings.Join(SignatureAlgorithms, ", ")
}
