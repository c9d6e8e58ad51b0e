package backend

import (
	"errors"
	"net/http"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/certfleet/certfleet/internal/pki"
)

// Permanent reports whether a signing failure cannot succeed by retrying:
// the role refuses the request (Vault answers 400, the local backend
// pki.ErrNotAllowed) or the role or authority is gone (404). Such a
// certificate waits for its declaration, the catalog or its issuer to
// change; anything else (a timeout, a 5xx, a sealed Vault) is transient and
// retried with backoff.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, pki.ErrNotAllowed) || errors.Is(err, ErrNotFound) {
		return true
	}
	var p *ACMEProblem
	if errors.As(err, &p) {
		return p.Permanent()
	}
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && (re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusNotFound)
}
