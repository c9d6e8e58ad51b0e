package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

var (
	_ resource.ResourceWithConfigure      = (*policyResource)(nil)
	_ resource.ResourceWithImportState    = (*policyResource)(nil)
	_ resource.ResourceWithValidateConfig = (*policyResource)(nil)
)

type policyResource struct{ backend backend.Backend }

// NewPolicyResource is certfleet_policy.
func NewPolicyResource() resource.Resource { return &policyResource{} }

type policySelectorModel struct {
	Issuers     types.List `tfsdk:"issuers"`
	Paths       types.List `tfsdk:"paths"`
	MatchLabels types.Map  `tfsdk:"match_labels"`
}

type subjectRuleModel struct {
	Organizations       types.List `tfsdk:"organizations"`
	OrganizationalUnits types.List `tfsdk:"organizational_units"`
}

type keyAlgorithmModel struct {
	Algorithm types.String `tfsdk:"algorithm"`
	MinSize   types.Int64  `tfsdk:"min_size"`
}

var keyAlgorithmType = types.ObjectType{AttrTypes: map[string]attr.Type{"algorithm": types.StringType, "min_size": types.Int64Type}}

type policyModel struct {
	ID             types.String         `tfsdk:"id"`
	Name           types.String         `tfsdk:"name"`
	Selector       *policySelectorModel `tfsdk:"selector"`
	DNSNames       types.List           `tfsdk:"dns_names"`
	IPRanges       types.List           `tfsdk:"ip_ranges"`
	URIs           types.List           `tfsdk:"uris"`
	EmailAddresses types.List           `tfsdk:"email_addresses"`
	Subject        *subjectRuleModel    `tfsdk:"subject"`
	KeyAlgorithms  types.List           `tfsdk:"key_algorithms"`
	MaxDuration    types.String         `tfsdk:"max_duration"`
	MinRenewBefore types.String         `tfsdk:"min_renew_before"`
	AllowedUsages  types.List           `tfsdk:"allowed_usages"`
	RequiredUsages types.List           `tfsdk:"required_usages"`
	AllowWildcards types.Bool           `tfsdk:"allow_wildcards"`
	MaxSANs        types.Int64          `tfsdk:"max_sans"`
	Clusters       types.List           `tfsdk:"clusters"`
	Namespaces     types.List           `tfsdk:"namespaces"`
	VaultKVPaths   types.List           `tfsdk:"vault_kv_paths"`
	DirectoryPaths types.List           `tfsdk:"directory_paths"`
	Enforcement    types.String         `tfsdk:"enforcement"`
}

func usages(s []string) []schemas.KeyUsage {
	out := make([]schemas.KeyUsage, len(s))
	for i, u := range s {
		out[i] = schemas.KeyUsage(u)
	}
	return out
}

func usageStrings(u []schemas.KeyUsage) []string {
	out := make([]string, len(u))
	for i, x := range u {
		out[i] = string(x)
	}
	return out
}

func (m *policyModel) toSchemas(ctx context.Context, diags *diag.Diagnostics) *schemas.Policy {
	p := &schemas.Policy{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindPolicy},
		Metadata: schemas.ObjectMeta{Name: m.Name.ValueString()},
		Spec: schemas.PolicySpec{
			DNSNames: listStrings(ctx, m.DNSNames, diags), IPRanges: listStrings(ctx, m.IPRanges, diags),
			URIs: listStrings(ctx, m.URIs, diags), EmailAddresses: listStrings(ctx, m.EmailAddresses, diags),
			MaxDuration:    schemas.Duration(m.MaxDuration.ValueString()),
			MinRenewBefore: schemas.Duration(m.MinRenewBefore.ValueString()),
			AllowedUsages:  usages(listStrings(ctx, m.AllowedUsages, diags)),
			RequiredUsages: usages(listStrings(ctx, m.RequiredUsages, diags)),
			AllowWildcards: m.AllowWildcards.ValueBool(), MaxSANs: int(m.MaxSANs.ValueInt64()),
			Clusters: listStrings(ctx, m.Clusters, diags), Namespaces: listStrings(ctx, m.Namespaces, diags),
			VaultKVPaths: listStrings(ctx, m.VaultKVPaths, diags), DirectoryPaths: listStrings(ctx, m.DirectoryPaths, diags),
			Enforcement: schemas.Enforcement(m.Enforcement.ValueString()),
		},
	}
	if s := m.Selector; s != nil {
		p.Spec.Selector = schemas.PolicySelector{Issuers: listStrings(ctx, s.Issuers, diags), Paths: listStrings(ctx, s.Paths, diags),
			MatchLabels: mapStrings(ctx, s.MatchLabels, diags)}
	}
	if s := m.Subject; s != nil {
		p.Spec.Subject = &schemas.SubjectRule{Organizations: listStrings(ctx, s.Organizations, diags),
			OrganizationalUnits: listStrings(ctx, s.OrganizationalUnits, diags)}
	}
	if !m.KeyAlgorithms.IsNull() && !m.KeyAlgorithms.IsUnknown() {
		var algs []keyAlgorithmModel
		diags.Append(m.KeyAlgorithms.ElementsAs(ctx, &algs, false)...)
		for _, a := range algs {
			p.Spec.KeyAlgorithms = append(p.Spec.KeyAlgorithms, schemas.KeyAlgorithmRule{
				Algorithm: schemas.KeyAlgorithm(a.Algorithm.ValueString()), MinSize: int(a.MinSize.ValueInt64())})
		}
	}
	return p
}

func (m *policyModel) fromSchemas(p *schemas.Policy) {
	s := p.Spec
	m.ID, m.Name = types.StringValue(p.Metadata.Name), types.StringValue(p.Metadata.Name)
	m.Selector = nil
	if sel := s.Selector; len(sel.Issuers)+len(sel.Paths)+len(sel.MatchLabels) > 0 {
		m.Selector = &policySelectorModel{Issuers: stringList(sel.Issuers), Paths: stringList(sel.Paths), MatchLabels: stringMap(sel.MatchLabels)}
	}
	m.DNSNames, m.IPRanges, m.URIs = stringList(s.DNSNames), stringList(s.IPRanges), stringList(s.URIs)
	m.EmailAddresses = stringList(s.EmailAddresses)
	m.Subject = nil
	if s.Subject != nil {
		m.Subject = &subjectRuleModel{Organizations: stringList(s.Subject.Organizations), OrganizationalUnits: stringList(s.Subject.OrganizationalUnits)}
	}
	m.KeyAlgorithms = types.ListNull(keyAlgorithmType)
	if len(s.KeyAlgorithms) > 0 {
		elems := make([]attr.Value, len(s.KeyAlgorithms))
		for i, k := range s.KeyAlgorithms {
			elems[i] = types.ObjectValueMust(keyAlgorithmType.AttrTypes, map[string]attr.Value{
				"algorithm": types.StringValue(string(k.Algorithm)), "min_size": types.Int64Value(int64(k.MinSize))})
		}
		m.KeyAlgorithms = types.ListValueMust(keyAlgorithmType, elems)
	}
	m.MaxDuration, m.MinRenewBefore = optString(string(s.MaxDuration)), optString(string(s.MinRenewBefore))
	m.AllowedUsages, m.RequiredUsages = stringList(usageStrings(s.AllowedUsages)), stringList(usageStrings(s.RequiredUsages))
	m.AllowWildcards = types.BoolValue(s.AllowWildcards)
	m.MaxSANs = types.Int64Value(int64(s.MaxSANs))
	m.Clusters, m.Namespaces = stringList(s.Clusters), stringList(s.Namespaces)
	m.VaultKVPaths, m.DirectoryPaths = stringList(s.VaultKVPaths), stringList(s.DirectoryPaths)
	enf := s.Enforcement
	if enf == "" {
		enf = schemas.EnforcementDeny
	}
	m.Enforcement = types.StringValue(string(enf))
}

func (r *policyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_policy"
}

var enforcements = []string{string(schemas.EnforcementDeny), string(schemas.EnforcementWarn)}

func (r *policyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	list := func(desc string) schema.ListAttribute {
		return schema.ListAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: desc}
	}
	algs := make([]string, 0, len(schemas.KeySizes))
	for _, a := range []schemas.KeyAlgorithm{schemas.RSA, schemas.ECDSA, schemas.Ed25519} {
		algs = append(algs, string(a))
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A certificate policy: which certificates it governs and what they may look like. Every policy that " +
			"selects a certificate must allow it, and a certificate no policy selects is denied. The reconciler and " +
			"`certfleet validate`/`plan` evaluate policies with the same code that validates this resource at plan time.",
		Attributes: map[string]schema.Attribute{
			"id":   schema.StringAttribute{Computed: true, MarkdownDescription: "The policy's name.", PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{Required: true, PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}, MarkdownDescription: "The policy's name. Changing it replaces the policy."},
			"selector": schema.SingleNestedAttribute{Optional: true,
				MarkdownDescription: "Which certificates the policy governs; every field set must match. Default: all certificates.",
				Attributes: map[string]schema.Attribute{
					"issuers":      list("Issuer names. Default: any issuer."),
					"paths":        list("Repository path globs (`teams/payments/**`). Default: any path."),
					"match_labels": schema.MapAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "Labels the certificate must carry. Default: none."},
				}},
			"dns_names":       list("Allowed DNS name patterns: `*` matches one label, `**` several (`**.payments.svc.cluster.local`). Default: any name."),
			"ip_ranges":       list("Allowed IP SAN ranges, CIDR (`10.0.0.0/8`). Default: any address."),
			"uris":            list("Allowed URI / SPIFFE ID patterns: `*` within a path segment, `**` across (`spiffe://fleet.example/ns/payments/**`). Default: any URI."),
			"email_addresses": list("Allowed e-mail patterns (`*@payments.example.com`). Default: any address."),
			"subject": schema.SingleNestedAttribute{Optional: true, MarkdownDescription: "Allowed subject organizations and units (patterns). Default: any.",
				Attributes: map[string]schema.Attribute{
					"organizations":        list("Allowed organizations."),
					"organizational_units": list("Allowed organizational units."),
				}},
			"key_algorithms": schema.ListNestedAttribute{Optional: true,
				MarkdownDescription: "Allowed private key algorithms, each with a minimum size. Default: any (above the floor: RSA 2048).",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"algorithm": schema.StringAttribute{Required: true, Validators: []validator.String{stringvalidator.OneOf(algs...)},
						MarkdownDescription: oneOfDescription(algs...)},
					"min_size": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(0),
						MarkdownDescription: "Smallest size allowed: RSA bits or the ECDSA curve size. Default 0 (the floor)."},
				}}},
			"max_duration":     schema.StringAttribute{Optional: true, Validators: []validator.String{durationValidator{}}, MarkdownDescription: "Longest lifetime allowed, e.g. `2160h` or `90d`. Default: no limit."},
			"min_renew_before": schema.StringAttribute{Optional: true, Validators: []validator.String{durationValidator{}}, MarkdownDescription: "Renewal must happen at least this long before expiry. Default: no limit."},
			"allowed_usages":   list("Usages a certificate may ask for, cert-manager's names (`server auth`). Default: any."),
			"required_usages":  list("Usages a certificate must ask for. Default: none."),
			"allow_wildcards": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Allow `*.` DNS names. Default `false`."},
			"max_sans": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(0),
				MarkdownDescription: "Most subject alternative names (all kinds) allowed; 0 for no limit. Default 0."},
			"clusters":   list("Allowed target cluster names (globs). Default: any."),
			"namespaces": list("Allowed target namespaces (globs). Default: any."),
			"vault_kv_paths": list("Allowed Vault KV targets, `<mount>/<path>` globs (`*` within a segment, `**` across). " +
				"The catalog's own mount is always refused. Default: any other."),
			"directory_paths": list("Allowed directory targets, globs over the cleaned path as declared (relative to the reconciler's output root, or absolute). Default: any."),
			"enforcement": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("deny"),
				Validators:          []validator.String{stringvalidator.OneOf(enforcements...)},
				MarkdownDescription: oneOfDescription(enforcements...) + " `warn` reports violations without denying. Default `deny`."},
		},
	}
}

func (r *policyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.backend, _ = dataFrom(req.ProviderData, &resp.Diagnostics)
}

// ValidateConfig compiles the policy with the reconciler's code: a bad
// pattern is an attribute error with the offending value.
func (r *policyResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m policyModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || anyUnknown(m.Name, m.DNSNames, m.IPRanges, m.URIs, m.EmailAddresses, m.KeyAlgorithms,
		m.MaxDuration, m.MinRenewBefore, m.AllowedUsages, m.RequiredUsages, m.Clusters, m.Namespaces, m.VaultKVPaths, m.DirectoryPaths, m.MaxSANs) {
		return
	}
	if m.Selector != nil && anyUnknown(m.Selector.Issuers, m.Selector.Paths, m.Selector.MatchLabels) {
		return
	}
	addSchemaErrors(&resp.Diagnostics, "Policy", schemas.Validate(m.toSchemas(ctx, &resp.Diagnostics)))
}

var policies = catalogResource[policyModel, *schemas.Policy, *policyModel]{
	kind: schemas.KindPolicy, tfType: "certfleet_policy", get: getObject[schemas.Policy](schemas.KindPolicy), write: putObject[*schemas.Policy],
}

func (m *policyModel) objectName() string { return m.Name.ValueString() }

func (r *policyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	policies.save(ctx, r.backend, true, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *policyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	policies.read(ctx, r.backend, req, resp)
}

func (r *policyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	policies.save(ctx, r.backend, false, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *policyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	policies.delete(ctx, r.backend, req, resp)
}

func (r *policyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}
