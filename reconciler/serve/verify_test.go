package serve_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/certfleet/certfleet/schemas"
)

// TestAnUnsignedRevisionIsNeverApplied runs the daemon with source.verify:
// the repository's commits are not signed by the trusted key, so nothing is
// delivered and the status says why.
func TestAnUnsignedRevisionIsNeverApplied(t *testing.T) {
	w := newWorld(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	trusted := filepath.Join(w.dir, "trusted_keys")
	if err := os.WriteFile(trusted, ssh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	w.push(map[string]string{"apps/a.yaml": w.cert("a", "")})
	dm := w.start(func(c *schemas.ServeConfig) {
		c.Source.Verify = &schemas.ServeSourceVerify{TrustedKeyFiles: []string{trusted}}
	})
	eventually(t, 20*time.Second, "the status says the revision is not signed", func() bool {
		_, body := dm.get(t, "/report")
		return strings.Contains(body, "sourceError") && strings.Contains(body, "not signed by a trusted key")
	})
	time.Sleep(time.Second)
	if s := w.serial("a"); s != "" {
		t.Errorf("an unsigned revision was applied: a holds %s", s)
	}
}
