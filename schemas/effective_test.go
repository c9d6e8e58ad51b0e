package schemas_test

import (
	"testing"

	"github.com/certfleet/certfleet/schemas"
)

func TestEffectivesShare(t *testing.T) {
	var s schemas.Effectives
	mk := func(ttl string, changed ...string) *schemas.Effective {
		return &schemas.Effective{TTL: ttl, Usages: []schemas.KeyUsage{"digital signature", "server auth"},
			SignatureAlgorithm: "ECDSAWithSHA256", Changed: changed}
	}
	first := s.Share(mk("48h"))
	if got := s.Share(mk("48h")); got != first {
		t.Error("an equal Effective is not the one held")
	}
	for _, other := range []*schemas.Effective{mk("24h"), mk("48h", "ttl"), {TTL: "48h", SignatureAlgorithm: "ECDSAWithSHA256"},
		{TTL: "48h", Subject: "CN=api", Usages: first.Usages, SignatureAlgorithm: "ECDSAWithSHA256"}} {
		if got := s.Share(other); got == first || got != other {
			t.Errorf("Share(%+v) = %+v, a different value", other, got)
		}
	}
	if s.Share(nil) != nil {
		t.Error("Share(nil) is not nil")
	}
}
