package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/sourceignore"
	"github.com/fluxcd/pkg/sourceignore/gitignore"
	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/certfleet/certfleet/schemas"
)

// TestGeneratedSchemasAreCurrent fails when the committed JSON Schema files
// differ from what the Go types generate.
func TestGeneratedSchemasAreCurrent(t *testing.T) {
	t.Chdir("../..")
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(schemas.Kinds)+3 {
		t.Errorf("Generate made %d files, want one per kind, certfleet.json, report.json and serveconfig.json", len(files))
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("schemas/jsonschema", name))
		if err != nil {
			t.Errorf("schemas/jsonschema/%s: %v; run make generate", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("schemas/jsonschema/%s is stale; run make generate", name)
		}
	}
	committed, _ := filepath.Glob("schemas/jsonschema/*.json")
	for _, path := range committed {
		if _, ok := files[filepath.Base(path)]; !ok {
			t.Errorf("%s is not generated any more; run make generate and delete it", path)
		}
	}
}

const schemaDir = "../jsonschema"

// compileSchemas compiles every committed schema, by its $id.
func compileSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	names := append(slices.Clone(schemas.Kinds), "certfleet")
	for _, kind := range names {
		f, err := os.Open(filepath.Join(schemaDir, FileName(kind)))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", FileName(kind), err)
		}
		if err := c.AddResource(baseURL+FileName(kind), doc); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for _, kind := range names {
		s, err := c.Compile(baseURL + FileName(kind))
		if err != nil {
			t.Fatalf("compiling %s: %v", FileName(kind), err)
		}
		out[kind] = s
	}
	return out
}

// yamlDocuments splits a YAML file into its documents, each as JSON.
func yamlDocuments(t *testing.T, data []byte) [][]byte {
	t.Helper()
	dec := yaml3.NewDecoder(bytes.NewReader(data))
	var out [][]byte
	for {
		var n yaml3.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := yaml3.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, j)
	}
}

func validateJSON(s *jsonschema.Schema, doc []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// modeline reads the schema a file's first line names for editors.
func modeline(data []byte) string {
	first, _, _ := bufio.NewReader(bytes.NewReader(data)).ReadLine()
	s, ok := strings.CutPrefix(string(first), "# yaml-language-server: $schema=")
	if !ok {
		return ""
	}
	return s
}

// TestManifestsMatchTheSchemas checks that valid manifests pass both the Go
// checks and the generated JSON Schemas: the two must not disagree.
func TestManifestsMatchTheSchemas(t *testing.T) {
	compiled := compileSchemas(t)
	files, _ := filepath.Glob("../testdata/valid/*.yaml")
	// The repository's examples must be valid too, but for what their
	// .certfleetignore files exclude, as certfleet itself skips it.
	examples := exampleManifests(t, "../../examples")
	if len(files) < len(schemas.Kinds) {
		t.Fatalf("found %d valid manifests under testdata/valid, want one file per kind", len(files))
	}
	files = append(files, examples...)
	seenKinds := map[string]bool{}
	for _, file := range files {
		t.Run(filepath.ToSlash(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			// (a) Decode, expand and validate cleanly.
			dec := schemas.Decode(file, data)
			for _, e := range dec.Errors {
				t.Errorf("%v", e)
			}
			for _, d := range dec.Documents {
				var errs schemas.Errors
				switch d.Object.(type) {
				case *schemas.Certificate, *schemas.CertificateSet:
					decl, es := schemas.Declarations(d)
					errs = es
					if len(decl) == 0 && len(es) == 0 {
						t.Errorf("%s %s declares no certificates", d.Kind, d.Name)
					}
				default:
					errs = d.Locate(schemas.Validate(d.Object))
				}
				for _, e := range errs {
					t.Errorf("%v", e)
				}
				seenKinds[d.Kind] = true
			}
			inTestdata := strings.HasPrefix(filepath.ToSlash(file), "../testdata/")
			if inTestdata && len(dec.Documents) == 0 {
				t.Fatalf("no certfleet documents")
			}
			if !inTestdata && len(dec.Documents) == 0 {
				return // an example of another tool (a Deployment, a Terraform file's YAML)
			}
			// (b) Every certfleet document validates against its kind's schema
			// and against certfleet.json; the modeline names the right one.
			schema := modeline(data)
			if inTestdata && schema == "" {
				t.Errorf("the first line is not a yaml-language-server modeline")
			}
			kindDocs := 0
			for i, doc := range yamlDocuments(t, data) {
				var head struct{ APIVersion, Kind string }
				if err := yaml.Unmarshal(doc, &head); err != nil || head.APIVersion != schemas.APIVersion {
					continue
				}
				kindDocs++
				if inTestdata && schema != "../../jsonschema/"+FileName(head.Kind) {
					t.Errorf("document %d is a %s but the modeline names %s", i, head.Kind, schema)
				}
				if schema != "" {
					// An example may name its kind's schema or certfleet.json, by a path from where it is.
					named, _ := filepath.Abs(filepath.Join(filepath.Dir(file), schema))
					dir, _ := filepath.Abs(schemaDir)
					if filepath.Dir(named) != dir || (filepath.Base(named) != FileName(head.Kind) && filepath.Base(named) != "certfleet.json") {
						t.Errorf("document %d is a %s but the modeline names %s", i, head.Kind, schema)
					}
				}
				if err := validateJSON(compiled[head.Kind], doc); err != nil {
					t.Errorf("document %d against %s: %v", i, FileName(head.Kind), err)
				}
				if err := validateJSON(compiled["certfleet"], doc); err != nil {
					t.Errorf("document %d against certfleet.json: %v", i, err)
				}
			}
			if kindDocs != len(dec.Documents) {
				t.Errorf("%d certfleet documents by apiVersion, %d decoded", kindDocs, len(dec.Documents))
			}
		})
	}
	for _, k := range schemas.Kinds {
		if !seenKinds[k] {
			t.Errorf("no valid manifest of kind %s", k)
		}
	}
}

// exampleManifests lists the YAML files under root that .certfleetignore
// files (read as the reconciler reads them) do not exclude.
func exampleManifests(t *testing.T, root string) []string {
	t.Helper()
	var patterns []gitignore.Pattern
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return filepath.SkipDir // no examples yet
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case d.Name() == ".certfleetignore":
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var domain []string
			if dir := filepath.ToSlash(filepath.Dir(rel)); dir != "." {
				domain = strings.Split(dir, "/")
			}
			patterns = append(patterns, sourceignore.ReadPatterns(bytes.NewReader(b), domain)...)
		case !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")):
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := sourceignore.NewDefaultMatcher(patterns, nil)
	var out []string
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if !m.Match(strings.Split(filepath.ToSlash(rel), "/"), false) {
			out = append(out, f)
		}
	}
	return out
}

// TestSchemasRejectWhatDecodeRejects shows the JSON Schemas are as strict as
// Decode about structure: an editor flags the same mistakes.
func TestSchemasRejectWhatDecodeRejects(t *testing.T) {
	compiled := compileSchemas(t)
	tests := []struct {
		name string
		kind string
		yaml string
	}{
		{name: "an unknown field in the spec", kind: schemas.KindCertificate,
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: api}\nspec:\n  issuer: fleet\n  dnsName: [api.payments.svc]\n"},
		{name: "an unknown field in a target", kind: schemas.KindCertificate,
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: api}\nspec:\n  issuer: fleet\n  targets: [{kubernetes: {cluster: a, namespace: b, secret: c}}]\n"},
		{name: "a string where a list belongs", kind: schemas.KindCertificate,
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: api}\nspec:\n  issuer: fleet\n  dnsNames: api.payments.svc\n"},
		{name: "an unknown usage", kind: schemas.KindCertificate,
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: api}\nspec:\n  issuer: fleet\n  usages: [serverauth]\n"},
		{name: "a duration that is not one", kind: schemas.KindCertificate,
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: api}\nspec:\n  issuer: fleet\n  duration: 3 months\n"},
		{name: "a wrong kind for the schema", kind: schemas.KindIssuer,
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: api}\nspec: {authority: root}\n"},
		{name: "a wrong apiVersion", kind: schemas.KindIssuer,
			yaml: "apiVersion: certfleet.dev/v1alpha2\nkind: Issuer\nmetadata: {name: api}\nspec: {authority: root}\n"},
		{name: "an unknown enforcement", kind: schemas.KindPolicy,
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec: {enforcement: audit}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := yaml.YAMLToJSON([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if err := validateJSON(compiled[tt.kind], doc); err == nil {
				t.Errorf("%s accepted it", FileName(tt.kind))
			}
			if err := validateJSON(compiled["certfleet"], doc); err == nil {
				t.Errorf("certfleet.json accepted it")
			}
			// Go agrees: Decode or Validate rejects it too.
			dec := schemas.Decode("f.yaml", []byte(tt.yaml))
			rejected := len(dec.Errors) > 0
			for _, d := range dec.Documents {
				rejected = rejected || len(schemas.Validate(d.Object)) > 0
			}
			if !rejected && tt.kind == schemas.KindCertificate {
				t.Errorf("Decode and Validate accepted what the schema rejects")
			}
		})
	}
}
