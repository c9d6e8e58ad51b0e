package provider

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

// dataFrom takes what the provider configured; before Configure ran
// (validation, some plans) it is nil and the caller keeps its zero values.
func dataFrom(data any, diags *diag.Diagnostics) (backend.Backend, func() time.Time) {
	if data == nil {
		return nil, time.Now
	}
	d, ok := data.(*providerData)
	if !ok {
		diags.AddError("Unexpected Provider Data", fmt.Sprintf("expected the provider's data, got %T; this is a bug in the provider", data))
		return nil, time.Now
	}
	return d.backend, d.now
}

// listStrings reads a list of strings; null and unknown give nil.
func listStrings(ctx context.Context, l types.List, diags *diag.Diagnostics) []string {
	if l.IsNull() || l.IsUnknown() {
		return nil
	}
	var out []string
	diags.Append(l.ElementsAs(ctx, &out, false)...)
	return out
}

// stringList writes a list of strings; an empty one is null, as an unset
// optional attribute reads back.
func stringList(s []string) types.List {
	if len(s) == 0 {
		return types.ListNull(types.StringType)
	}
	elems := make([]attr.Value, len(s))
	for i, v := range s {
		elems[i] = types.StringValue(v)
	}
	return types.ListValueMust(types.StringType, elems)
}

func mapStrings(ctx context.Context, m types.Map, diags *diag.Diagnostics) map[string]string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	out := map[string]string{}
	diags.Append(m.ElementsAs(ctx, &out, false)...)
	return out
}

func stringMap(m map[string]string) types.Map {
	if len(m) == 0 {
		return types.MapNull(types.StringType)
	}
	elems := map[string]attr.Value{}
	for k, v := range m {
		elems[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, elems)
}

func optString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// anyUnknown reports whether a configuration still has unknown values, in
// which case plan-time validation waits for them.
func anyUnknown(vals ...attr.Value) bool {
	for _, v := range vals {
		if v.IsUnknown() {
			return true
		}
		// A list or map is known while an element (a reference) is not.
		switch c := v.(type) {
		case types.List:
			if anyUnknown(c.Elements()...) {
				return true
			}
		case types.Map:
			for _, e := range c.Elements() {
				if anyUnknown(e) {
					return true
				}
			}
		case types.Object:
			for _, e := range c.Attributes() {
				if anyUnknown(e) {
					return true
				}
			}
		}
	}
	return false
}

// addSchemaErrors turns the schemas package's field errors into attribute
// errors, so Terraform points at the attribute a user wrote.
func addSchemaErrors(diags *diag.Diagnostics, kind string, errs schemas.Errors) {
	for _, e := range errs {
		detail := e.Problem
		if e.Hint != "" {
			detail += "; " + e.Hint
		}
		p, ok := attributePath(e.Field)
		if !ok {
			diags.AddError("Invalid "+kind, detail)
			continue
		}
		diags.AddAttributeError(p, "Invalid "+kind+" Attribute", detail)
	}
}

// acronymFields spell the plural acronyms a generic conversion would split.
var acronymFields = map[string]string{"maxSANs": "max_sans", "allowIPSANs": "allow_ip_sans", "allowedURISANs": "allowed_uri_sans"}

// attributePath maps a schemas field path (spec.keyAlgorithms[0].minSize) to
// the Terraform attribute (key_algorithms[0].min_size). metadata.name is the
// name attribute; spec is the resource itself.
func attributePath(field string) (path.Path, bool) {
	field = strings.TrimPrefix(field, "spec.")
	if field == "spec" || field == "" {
		return path.Empty(), false
	}
	switch field {
	case "metadata.name":
		return path.Root("name"), true
	case "metadata.labels":
		return path.Root("labels"), true
	}
	var p path.Path
	first := true
	for field != "" {
		switch field[0] {
		case '.':
			field = field[1:]
			continue
		case '[':
			end := strings.IndexByte(field, ']')
			if end < 0 || first {
				return p, !first
			}
			inner := field[1:end]
			field = field[end+1:]
			if k, err := strconv.Unquote(inner); err == nil {
				p = p.AtMapKey(k)
			} else if i, err := strconv.Atoi(inner); err == nil {
				p = p.AtListIndex(i)
			}
			continue
		}
		end := strings.IndexAny(field, ".[")
		if end < 0 {
			end = len(field)
		}
		name := snake(field[:end])
		field = field[end:]
		if first {
			p = path.Root(name)
			first = false
		} else {
			p = p.AtName(name)
		}
	}
	return p, !first
}

// snake turns a JSON field name into a Terraform attribute name:
// permittedDNSDomains → permitted_dns_domains, maxTTL → max_ttl.
func snake(s string) string {
	if v, ok := acronymFields[s]; ok {
		return v
	}
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			prevLower := i > 0 && unicode.IsLower(r[i-1])
			acronymEnd := i > 0 && unicode.IsUpper(r[i-1]) && i+1 < len(r) && unicode.IsLower(r[i+1])
			if prevLower || acronymEnd {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// durationValidator checks a duration with the schemas package's syntax
// (Go durations plus days).
type durationValidator struct{}

func (durationValidator) Description(context.Context) string {
	return `a duration such as "2160h", "90d" or "1d12h"`
}
func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := schemas.Duration(req.ConfigValue.ValueString()).Parse(); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Duration", err.Error()+`; write a duration such as "2160h", "90d" or "1d12h"`)
	}
}

// oneOfDescription writes "One of `a`, `b`." for attribute docs, from the
// same list the validator uses.
func oneOfDescription(values ...string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "`" + v + "`"
	}
	return "One of " + strings.Join(quoted, ", ") + "."
}
