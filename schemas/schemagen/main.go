// Command schemagen writes the JSON Schema files of certfleet's kinds, from
// the Go types and their comments, into schemas/jsonschema. `make generate`
// runs it; a test fails when the files are stale.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/certfleet/certfleet/schemas"
)

const (
	module  = "github.com/certfleet/certfleet"
	baseURL = "https://certfleet.dev/schemas/v1alpha1/"
)

func main() {
	root := flag.String("root", ".", "the module's root directory")
	out := flag.String("out", "schemas/jsonschema", "output directory, relative to -root")
	flag.Parse()
	if err := os.Chdir(*root); err != nil {
		fail(err)
	}
	files, err := Generate()
	if err != nil {
		fail(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "schemagen:", err)
	os.Exit(1)
}

// objects are the kinds, in the order of schemas.Kinds.
var objects = map[string]any{
	schemas.KindAuthority:      schemas.Authority{},
	schemas.KindIssuer:         schemas.Issuer{},
	schemas.KindPolicy:         schemas.Policy{},
	schemas.KindCluster:        schemas.Cluster{},
	schemas.KindRollout:        schemas.Rollout{},
	schemas.KindCertificate:    schemas.Certificate{},
	schemas.KindCertificateSet: schemas.CertificateSet{},
	schemas.KindTrustBundle:    schemas.TrustBundle{},
}

// FileName is the schema file of a kind: certificate.json, certificateset.json, …
func FileName(kind string) string { return strings.ToLower(kind) + ".json" }

// Generate returns every schema file by name. It must run in the module's
// root, where it reads the Go comments that become descriptions.
func Generate() (map[string][]byte, error) {
	r := &jsonschema.Reflector{Mapper: mapper, DoNotReference: false}
	if err := r.AddGoComments(module, "./schemas"); err != nil {
		return nil, fmt.Errorf("reading comments (run from the module root): %w", err)
	}
	files := map[string][]byte{}
	all := &jsonschema.Schema{
		Version:     jsonschema.Version,
		ID:          jsonschema.ID(baseURL + "certfleet.json"),
		Title:       "certfleet " + schemas.APIVersion,
		Description: "Any certfleet object; the kind field selects the schema.",
	}
	for _, kind := range schemas.Kinds {
		s := r.Reflect(objects[kind])
		s.ID = jsonschema.ID(baseURL + FileName(kind))
		s.Title = kind
		pinTypeMeta(s, kind)
		b, err := marshal(s)
		if err != nil {
			return nil, err
		}
		files[FileName(kind)] = b
		all.OneOf = append(all.OneOf, &jsonschema.Schema{Ref: FileName(kind)})
	}
	b, err := marshal(all)
	if err != nil {
		return nil, err
	}
	files["certfleet.json"] = b
	// The JSON that validate and plan print with -o json.
	rep := r.Reflect(schemas.Report{})
	rep.ID = jsonschema.ID(baseURL + "report.json")
	rep.Title = "certfleet report (" + schemas.ReportVersion + ")"
	if b, err = marshal(rep); err != nil {
		return nil, err
	}
	files["report.json"] = b
	// certfleet.yaml, the daemon's configuration.
	cfg := r.Reflect(schemas.ServeConfig{})
	cfg.ID = jsonschema.ID(baseURL + "serveconfig.json")
	cfg.Title = schemas.KindServeConfig
	pinTypeMeta(cfg, "ServeConfig")
	if b, err = marshal(cfg); err != nil {
		return nil, err
	}
	files["serveconfig.json"] = b
	return files, nil
}

// pinTypeMeta fixes apiVersion and kind to their only valid values, so an
// editor completes them and a wrong kind selects no schema.
func pinTypeMeta(s *jsonschema.Schema, kind string) {
	def := s.Definitions[kind]
	if def == nil {
		return
	}
	if p, ok := def.Properties.Get("apiVersion"); ok {
		p.Const = schemas.APIVersion
	}
	if p, ok := def.Properties.Get("kind"); ok {
		p.Const = kind
	}
}

func marshal(s *jsonschema.Schema) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func enum[T ~string](values ...T) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// mapper gives the string types of the contract their real shape.
func mapper(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeOf(schemas.Duration("")):
		return &jsonschema.Schema{Type: "string", Pattern: `^([0-9]+d)?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))*$`,
			Description: `A duration: Go's syntax ("2160h", "90m") plus days ("90d", "1d12h").`}
	case reflect.TypeOf(schemas.KeyUsage("")):
		return &jsonschema.Schema{Type: "string", Enum: enum(schemas.Usages...), Description: "A key usage, in cert-manager's names."}
	case reflect.TypeOf(schemas.AuthorityType("")):
		return &jsonschema.Schema{Type: "string", Enum: enum(schemas.AuthorityRoot, schemas.AuthorityIntermediate)}
	case reflect.TypeOf(schemas.KeyAlgorithm("")):
		return &jsonschema.Schema{Type: "string", Enum: enum(schemas.RSA, schemas.ECDSA, schemas.Ed25519)}
	case reflect.TypeOf(schemas.RotationPolicy("")):
		return &jsonschema.Schema{Type: "string", Enum: enum(schemas.RotationAlways, schemas.RotationNever)}
	case reflect.TypeOf(schemas.RetireMode("")):
		return &jsonschema.Schema{Type: "string", Enum: enum(schemas.RetireModes...)}
	case reflect.TypeOf(schemas.Enforcement("")):
		return &jsonschema.Schema{Type: "string", Enum: enum(schemas.EnforcementDeny, schemas.EnforcementWarn)}
	}
	return nil
}
