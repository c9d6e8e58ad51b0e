package schemas

import (
	"strings"
	"testing"
)

func validRollout() *Rollout {
	return &Rollout{
		TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindRollout},
		Metadata: ObjectMeta{Name: "fleet"},
		Spec: RolloutSpec{Waves: []RolloutWave{
			{Name: "staging", ClusterSelector: &LabelSelector{MatchLabels: map[string]string{"env": "staging"}}},
			{Name: "production"},
		}, Soak: "1h"},
	}
}

func TestValidateRollout(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *Rollout)
		want   []fieldErr
	}{
		{name: "two waves, the last taking the rest, are valid", change: func(r *Rollout) {}},
		{name: "no waves is an error", change: func(r *Rollout) { r.Spec.Waves = nil },
			want: []fieldErr{{"spec.waves", "waves is empty"}}},
		{name: "only the last wave may omit its selector", change: func(r *Rollout) { r.Spec.Waves[0].ClusterSelector = nil },
			want: []fieldErr{{"spec.waves[0].clusterSelector", "only the last wave may omit it"}}},
		{name: "an empty selector is an error", change: func(r *Rollout) { r.Spec.Waves[1].ClusterSelector = &LabelSelector{} },
			want: []fieldErr{{"spec.waves[1].clusterSelector", "no matchLabels"}}},
		{name: "a wave name used twice is an error", change: func(r *Rollout) { r.Spec.Waves[1].Name = "staging" },
			want: []fieldErr{{"spec.waves[1].name", "used twice"}}},
		{name: "an upper-case wave name is an error", change: func(r *Rollout) { r.Spec.Waves[1].Name = "Prod" },
			want: []fieldErr{{"spec.waves[1].name", `wave name "Prod"`}}},
		{name: "a share above one is an error", change: func(r *Rollout) { r.Spec.MaxSharePerPass = 1.5 },
			want: []fieldErr{{"spec.maxSharePerPass", "between 0 and 1"}}},
		{name: "a negative failure threshold is an error", change: func(r *Rollout) { r.Spec.PauseOnFailures = -1 },
			want: []fieldErr{{"spec.pauseOnFailures", "negative"}}},
		{name: "a soak that is no duration is an error", change: func(r *Rollout) { r.Spec.Soak = "an hour" },
			want: []fieldErr{{"spec.soak", "not a duration"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRollout()
			tt.change(r)
			checkErrors(t, Validate(r), tt.want)
		})
	}
}

func TestACatalogHoldsOneRollout(t *testing.T) {
	doc := `apiVersion: certfleet.dev/v1alpha1
kind: Rollout
metadata: {name: fleet}
spec:
  waves: [{name: staging, clusterSelector: {matchLabels: {env: staging}}}, {name: production}]
  soak: 30m
---
apiVersion: certfleet.dev/v1alpha1
kind: Rollout
metadata: {name: other}
spec:
  waves: [{name: all}]
`
	c, errs := DecodeCatalog("pki.yaml", []byte(doc))
	if len(errs) != 1 || !strings.Contains(errs.Error(), `a second Rollout "other"`) || errs[0].Line != 10 {
		t.Fatalf("errors: %v (line %d), want one naming the second Rollout at line 10 (its name)", errs, errs[0].Line)
	}
	if c.Rollout == nil || c.Rollout.Metadata.Name != "fleet" || c.Rollout.Spec.Soak != "30m" {
		t.Fatalf("the catalog's rollout is %+v, want fleet's", c.Rollout)
	}
}

// TestDecodeRolloutShare decodes a share written in YAML: the decoder once
// knew no float field and refused every maxSharePerPass.
func TestDecodeRolloutShare(t *testing.T) {
	doc := func(share string) string {
		return "apiVersion: certfleet.dev/v1alpha1\nkind: Rollout\nmetadata: {name: fleet}\nspec:\n  waves: [{name: all}]\n  maxSharePerPass: " + share + "\n"
	}
	for share, want := range map[string]float64{"0.25": 0.25, "1": 1} {
		dec := Decode("r.yaml", []byte(doc(share)))
		if len(dec.Errors) > 0 {
			t.Fatalf("maxSharePerPass: %s: %v", share, dec.Errors)
		}
		if got := dec.Documents[0].Object.(*Rollout).Spec.MaxSharePerPass; got != want {
			t.Errorf("maxSharePerPass: %s decoded as %g, want %g", share, got, want)
		}
	}
	dec := Decode("r.yaml", []byte(doc(`"a quarter"`)))
	if len(dec.Errors) != 1 || !strings.Contains(dec.Errors[0].Error(), "spec.maxSharePerPass: expected a number") {
		t.Errorf("a quoted share: got %v, want one error naming spec.maxSharePerPass", dec.Errors)
	}
}
