package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
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
	_ resource.ResourceWithConfigure      = (*issuerResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*issuerResource)(nil)
	_ resource.ResourceWithImportState    = (*issuerResource)(nil)
	_ resource.ResourceWithValidateConfig = (*issuerResource)(nil)
)

type issuerResource struct {
	backend backend.Backend
	now     func() time.Time
}

// NewIssuerResource is certfleet_issuer.
func NewIssuerResource() resource.Resource { return &issuerResource{} }

type issuerModel struct {
	ID                        types.String `tfsdk:"id"`
	Name                      types.String `tfsdk:"name"`
	Authority                 types.String `tfsdk:"authority"`
	Role                      types.String `tfsdk:"role"`
	AllowedDomains            types.List   `tfsdk:"allowed_domains"`
	AllowSubdomains           types.Bool   `tfsdk:"allow_subdomains"`
	AllowGlobDomains          types.Bool   `tfsdk:"allow_glob_domains"`
	AllowBareDomains          types.Bool   `tfsdk:"allow_bare_domains"`
	AllowWildcardCertificates types.Bool   `tfsdk:"allow_wildcard_certificates"`
	AllowAnyName              types.Bool   `tfsdk:"allow_any_name"`
	AllowedURISANs            types.List   `tfsdk:"allowed_uri_sans"`
	AllowIPSANs               types.Bool   `tfsdk:"allow_ip_sans"`
	KeyType                   types.String `tfsdk:"key_type"`
	KeyBits                   types.Int64  `tfsdk:"key_bits"`
	TTL                       types.String `tfsdk:"ttl"`
	MaxTTL                    types.String `tfsdk:"max_ttl"`
	ServerFlag                types.Bool   `tfsdk:"server_flag"`
	ClientFlag                types.Bool   `tfsdk:"client_flag"`
	ExtKeyUsage               types.List   `tfsdk:"ext_key_usage"`
	NoStore                   types.Bool   `tfsdk:"no_store"`
	ACME                      *acmeModel   `tfsdk:"acme"`
}

// acmeModel is the acme block: an issuer that orders from an ACME CA.
type acmeModel struct {
	Server                      types.String `tfsdk:"server"`
	Email                       types.String `tfsdk:"email"`
	CABundle                    types.String `tfsdk:"ca_bundle"`
	PreferredChain              types.String `tfsdk:"preferred_chain"`
	Profile                     types.String `tfsdk:"profile"`
	EABKeyID                    types.String `tfsdk:"eab_key_id"`
	EABHMACKeyFile              types.String `tfsdk:"eab_hmac_key_file"`
	EABHMACKeyVaultKV           types.String `tfsdk:"eab_hmac_key_vault_kv"`
	HTTP01                      types.Bool   `tfsdk:"http01"`
	DNS01Provider               types.String `tfsdk:"dns01_provider"`
	DNS01Nameservers            types.List   `tfsdk:"dns01_nameservers"`
	DNS01PropagationTimeout     types.String `tfsdk:"dns01_propagation_timeout"`
	DNS01SkipAuthoritativeCheck types.Bool   `tfsdk:"dns01_skip_authoritative_check"`
}

func (m *acmeModel) toSchemas(ctx context.Context, diags *diag.Diagnostics) *schemas.ACMEIssuer {
	if m == nil {
		return nil
	}
	a := &schemas.ACMEIssuer{Server: m.Server.ValueString(), Email: m.Email.ValueString(), CABundle: m.CABundle.ValueString(),
		PreferredChain: m.PreferredChain.ValueString(), Profile: m.Profile.ValueString()}
	if m.EABKeyID.ValueString() != "" || m.EABHMACKeyFile.ValueString() != "" || m.EABHMACKeyVaultKV.ValueString() != "" {
		a.ExternalAccountBinding = &schemas.ACMEExternalAccountBinding{KeyID: m.EABKeyID.ValueString(),
			HMACKeyFile: m.EABHMACKeyFile.ValueString(), HMACKeyVaultKV: m.EABHMACKeyVaultKV.ValueString()}
	}
	if m.HTTP01.ValueBool() {
		a.Solvers.HTTP01 = &schemas.ACMEHTTP01{}
	}
	if m.DNS01Provider.ValueString() != "" {
		a.Solvers.DNS01 = &schemas.ACMEDNS01{Provider: m.DNS01Provider.ValueString(), Nameservers: listStrings(ctx, m.DNS01Nameservers, diags),
			PropagationTimeout: schemas.Duration(m.DNS01PropagationTimeout.ValueString()), SkipAuthoritativeCheck: m.DNS01SkipAuthoritativeCheck.ValueBool()}
	}
	return a
}

func acmeFromSchemas(a *schemas.ACMEIssuer) *acmeModel {
	if a == nil {
		return nil
	}
	m := &acmeModel{Server: types.StringValue(a.Server), Email: optString(a.Email), CABundle: optString(a.CABundle),
		PreferredChain: optString(a.PreferredChain), Profile: optString(a.Profile), HTTP01: types.BoolValue(a.Solvers.HTTP01 != nil),
		EABKeyID: types.StringNull(), EABHMACKeyFile: types.StringNull(), EABHMACKeyVaultKV: types.StringNull(),
		DNS01Provider: types.StringNull(), DNS01Nameservers: types.ListNull(types.StringType), DNS01PropagationTimeout: types.StringNull(),
		DNS01SkipAuthoritativeCheck: types.BoolValue(false)}
	if b := a.ExternalAccountBinding; b != nil {
		m.EABKeyID, m.EABHMACKeyFile, m.EABHMACKeyVaultKV = optString(b.KeyID), optString(b.HMACKeyFile), optString(b.HMACKeyVaultKV)
	}
	if d := a.Solvers.DNS01; d != nil {
		m.DNS01Provider, m.DNS01Nameservers = types.StringValue(d.Provider), stringList(d.Nameservers)
		m.DNS01PropagationTimeout, m.DNS01SkipAuthoritativeCheck = optString(string(d.PropagationTimeout)), types.BoolValue(d.SkipAuthoritativeCheck)
	}
	return m
}

func (m *issuerModel) toSchemas(ctx context.Context, diags *diag.Diagnostics) *schemas.Issuer {
	server, client := m.ServerFlag.ValueBool(), m.ClientFlag.ValueBool()
	return &schemas.Issuer{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindIssuer},
		Metadata: schemas.ObjectMeta{Name: m.Name.ValueString()},
		Spec: schemas.IssuerSpec{
			Authority: m.Authority.ValueString(), Role: m.Role.ValueString(),
			AllowedDomains:  listStrings(ctx, m.AllowedDomains, diags),
			AllowSubdomains: m.AllowSubdomains.ValueBool(), AllowGlobDomains: m.AllowGlobDomains.ValueBool(),
			AllowBareDomains: m.AllowBareDomains.ValueBool(), AllowWildcardCertificates: m.AllowWildcardCertificates.ValueBool(),
			AllowAnyName: m.AllowAnyName.ValueBool(), AllowedURISANs: listStrings(ctx, m.AllowedURISANs, diags),
			AllowIPSANs: m.AllowIPSANs.ValueBool(), KeyType: m.KeyType.ValueString(), KeyBits: int(m.KeyBits.ValueInt64()),
			TTL: schemas.Duration(m.TTL.ValueString()), MaxTTL: schemas.Duration(m.MaxTTL.ValueString()),
			ServerFlag: &server, ClientFlag: &client, ExtKeyUsage: listStrings(ctx, m.ExtKeyUsage, diags),
			NoStore: m.NoStore.ValueBool(), ACME: m.ACME.toSchemas(ctx, diags),
		},
	}
}

func (m *issuerModel) fromSchemas(iss *schemas.Issuer) {
	s := iss.Spec
	m.ID, m.Name = types.StringValue(iss.Metadata.Name), types.StringValue(iss.Metadata.Name)
	m.Authority = optString(s.Authority)
	m.ACME = acmeFromSchemas(s.ACME)
	m.Role = types.StringValue(s.RoleName(iss.Metadata.Name))
	m.AllowedDomains = stringList(s.AllowedDomains)
	m.AllowSubdomains, m.AllowGlobDomains = types.BoolValue(s.AllowSubdomains), types.BoolValue(s.AllowGlobDomains)
	m.AllowBareDomains, m.AllowWildcardCertificates = types.BoolValue(s.AllowBareDomains), types.BoolValue(s.AllowWildcardCertificates)
	m.AllowAnyName, m.AllowIPSANs = types.BoolValue(s.AllowAnyName), types.BoolValue(s.AllowIPSANs)
	m.AllowedURISANs = stringList(s.AllowedURISANs)
	m.KeyType = types.StringValue(s.KeyType)
	m.KeyBits = types.Int64Value(int64(s.KeyBits))
	m.TTL, m.MaxTTL = optString(string(s.TTL)), optString(string(s.MaxTTL))
	m.ServerFlag, m.ClientFlag = types.BoolValue(s.Server()), types.BoolValue(s.Client())
	m.ExtKeyUsage = stringList(s.ExtKeyUsage)
	m.NoStore = types.BoolValue(s.NoStore)
}

func (r *issuerResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_issuer"
}

var roleKeyTypes = []string{"any", "ec", "rsa", "ed25519"}

func (r *issuerResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	flag := func(desc string, def bool) schema.BoolAttribute {
		return schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(def),
			MarkdownDescription: fmt.Sprintf("%s Default `%t`.", desc, def)}
	}
	list := func(desc string) schema.ListAttribute {
		return schema.ListAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: desc}
	}
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "An issuer: a named issuing profile, an authority plus a Vault PKI role whose constraints Vault enforces " +
			"on every certificate the reconciler asks for. Certificates in Git name their issuer.",
		Attributes: map[string]schema.Attribute{
			"id":   schema.StringAttribute{Computed: true, MarkdownDescription: "The issuer's name.", PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{Required: true, PlanModifiers: replace, MarkdownDescription: "The issuer's name; `Certificate` manifests name it in `spec.issuer`. Changing it replaces the issuer."},
			"authority": schema.StringAttribute{Optional: true, PlanModifiers: replace,
				MarkdownDescription: "The authority that signs; refer to it (`certfleet_authority.intermediate.name`). Required unless `acme` is set; " +
					"empty with it. Changing it replaces the issuer."},
			"acme": schema.SingleNestedAttribute{Optional: true,
				MarkdownDescription: "Order certificates from an ACME CA (Let's Encrypt, ZeroSSL, step-ca, Vault's ACME) instead of an authority. " +
					"The role attributes do not apply; policies do. The account key is made on first issuance and kept in the backend, never in the state.",
				Attributes: map[string]schema.Attribute{
					"server":          schema.StringAttribute{Required: true, MarkdownDescription: "The ACME directory URL (https://)."},
					"email":           schema.StringAttribute{Optional: true, MarkdownDescription: "The account's contact address. Default: none."},
					"ca_bundle":       schema.StringAttribute{Optional: true, MarkdownDescription: "PEM CA certificates to trust for the directory, beside the system's. Default: the system's only."},
					"preferred_chain": schema.StringAttribute{Optional: true, MarkdownDescription: "Common name of the root to prefer among the CA's alternate chains. Default: the CA's default chain."},
					"profile":         schema.StringAttribute{Optional: true, MarkdownDescription: "The ACME profile to order. Default: the CA's default."},
					"eab_key_id":      schema.StringAttribute{Optional: true, MarkdownDescription: "External account binding key ID, for CAs that require one. Default: none."},
					"eab_hmac_key_file": schema.StringAttribute{Optional: true,
						MarkdownDescription: "File holding the EAB HMAC key (base64url), read by certfleet when it registers; the key never enters the state. Default: none."},
					"eab_hmac_key_vault_kv": schema.StringAttribute{Optional: true,
						MarkdownDescription: "KV v2 secret holding the EAB HMAC key, as `mount/path#field`; read with the Vault backend's token. Default: none."},
					"http01": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
						MarkdownDescription: "Answer HTTP-01 challenges on certfleet's listener (serve's, or `--acme-http01-listen`). Default `false`."},
					"dns01_provider": schema.StringAttribute{Optional: true, Validators: []validator.String{stringvalidator.OneOf(schemas.ACMEDNSProviders...)},
						MarkdownDescription: oneOfDescription(schemas.ACMEDNSProviders...) + " The lego DNS provider for DNS-01; it reads its usual environment variables. Default: no DNS-01."},
					"dns01_nameservers": schema.ListAttribute{ElementType: types.StringType, Optional: true,
						MarkdownDescription: "Resolvers (host:port) the propagation check asks. Default: the system's."},
					"dns01_propagation_timeout": schema.StringAttribute{Optional: true, Validators: []validator.String{durationValidator{}},
						MarkdownDescription: "How long to wait for the TXT record to be visible. Default: the provider's own (lego's 1m for most)."},
					"dns01_skip_authoritative_check": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
						MarkdownDescription: "Check only `dns01_nameservers`, not the zone's authoritative servers (split-horizon DNS). Default `false`."},
				}},
			"role": schema.StringAttribute{Optional: true, Computed: true, PlanModifiers: append(replace, stringplanmodifier.UseStateForUnknown()),
				MarkdownDescription: "The Vault role's name in the authority's mount. Default: the issuer's name. Changing it replaces the issuer."},
			"allowed_domains":             list("Domains the role may issue for (Vault `allowed_domains`). Default: none."),
			"allow_subdomains":            flag("Allow names below `allowed_domains`.", false),
			"allow_glob_domains":          flag("Let `allowed_domains` hold globs such as `*.svc.cluster.local`.", false),
			"allow_bare_domains":          flag("Allow the `allowed_domains` themselves.", false),
			"allow_wildcard_certificates": flag("Allow wildcard names (`*.example.com`).", false),
			"allow_any_name":              flag("Allow any name; policies still apply.", false),
			"allowed_uri_sans":            list("URI SAN globs the role allows, e.g. `spiffe://fleet.example/ns/*`. Default: none."),
			"allow_ip_sans":               flag("Allow IP address SANs.", false),
			"key_type": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("any"),
				Validators:          []validator.String{stringvalidator.OneOf(roleKeyTypes...)},
				MarkdownDescription: oneOfDescription(roleKeyTypes...) + " The key types the role signs. Default `any`."},
			"key_bits": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(0),
				MarkdownDescription: "Minimum key size for `key_type`; 0 lets Vault decide. Default 0."},
			"ttl": schema.StringAttribute{Optional: true, Validators: []validator.String{durationValidator{}},
				MarkdownDescription: "Default certificate lifetime when a request gives none. Default: Vault's (the mount's default lease)."},
			"max_ttl": schema.StringAttribute{Optional: true, Validators: []validator.String{durationValidator{}},
				MarkdownDescription: "Longest certificate lifetime the role signs. Must not exceed the authority's remaining lifetime (checked at plan). Default: the mount's maximum."},
			"server_flag":   flag("Allow the server auth usage.", true),
			"client_flag":   flag("Allow the client auth usage.", true),
			"ext_key_usage": list("Further extended key usages, Vault's names (e.g. `CodeSigning`). Default: none."),
			"no_store":      flag("Do not store issued certificates in Vault (less storage; no revocation by serial).", false),
		},
	}
}

func (r *issuerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.backend, r.now = dataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *issuerResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m issuerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || anyUnknown(m.Name, m.Authority, m.KeyType, m.KeyBits, m.TTL, m.MaxTTL, m.AllowedDomains, m.AllowGlobDomains) {
		return
	}
	addSchemaErrors(&resp.Diagnostics, "Issuer", schemas.Validate(m.toSchemas(ctx, &resp.Diagnostics)))
}

// ModifyPlan cross-checks max_ttl against the authority's remaining
// lifetime, when the authority already exists.
func (r *issuerResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.backend == nil {
		return
	}
	var plan issuerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.Authority.IsUnknown() || plan.MaxTTL.IsUnknown() || plan.MaxTTL.IsNull() {
		return
	}
	a, err := backend.GetObject[schemas.Authority](ctx, r.backend, schemas.KindAuthority, plan.Authority.ValueString())
	if err != nil {
		return // created in the same apply: checked again in Create
	}
	r.checkMaxTTL(plan.MaxTTL.ValueString(), a, &resp.Diagnostics)
}

func (r *issuerResource) checkMaxTTL(maxTTL string, a *schemas.Authority, diags *diag.Diagnostics) {
	d, err := schemas.Duration(maxTTL).Parse()
	if err != nil || a.Status.NotAfter == nil {
		return
	}
	now := r.now()
	if until := now.Add(d); until.After(*a.Status.NotAfter) {
		diags.AddAttributeError(path.Root("max_ttl"), "Max TTL Beyond the Authority's Lifetime",
			fmt.Sprintf("max_ttl %s would let certificates live until %s, but authority %q expires %s (%s from now); "+
				"Vault would refuse such certificates. Use a max_ttl of at most %s, or rotate the authority.",
				maxTTL, until.UTC().Format(time.RFC3339), a.Metadata.Name, a.Status.NotAfter.UTC().Format(time.RFC3339),
				schemas.FormatDuration(a.Status.NotAfter.Sub(now).Truncate(time.Hour)), schemas.FormatDuration(a.Status.NotAfter.Sub(now).Truncate(time.Hour))))
	}
}

func (m *issuerModel) objectName() string { return m.Name.ValueString() }

// issuers writes the Vault role with the catalog entry, after the same
// max TTL check as the plan (the authority may have been created since).
func (r *issuerResource) issuers() catalogResource[issuerModel, *schemas.Issuer, *issuerModel] {
	return catalogResource[issuerModel, *schemas.Issuer, *issuerModel]{
		kind: schemas.KindIssuer, tfType: "certfleet_issuer", get: getObject[schemas.Issuer](schemas.KindIssuer),
		write: func(ctx context.Context, b backend.Backend, iss *schemas.Issuer, diags *diag.Diagnostics) {
			if iss.Spec.MaxTTL != "" {
				if a, err := backend.GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, iss.Spec.Authority); err == nil {
					r.checkMaxTTL(string(iss.Spec.MaxTTL), a, diags)
					if diags.HasError() {
						return
					}
				}
			}
			if err := backend.WriteIssuer(ctx, b, iss); err != nil {
				if errors.Is(err, backend.ErrUnknownAuthority) {
					diags.AddAttributeError(path.Root("authority"), "Unknown Authority",
						err.Error()+"; refer to it as authority = certfleet_authority.<name>.name so Terraform creates it first")
					return
				}
				diags.AddError("Cannot Write the Issuer", err.Error())
			}
		},
		remove: func(ctx context.Context, b backend.Backend, iss *schemas.Issuer) error {
			a, err := backend.GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, iss.Spec.Authority)
			if errors.Is(err, backend.ErrNotFound) {
				return nil // the authority and its roles are gone already
			}
			if err != nil {
				return err
			}
			return b.DeleteRole(ctx, iss, a)
		},
	}
}

func (r *issuerResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.issuers().save(ctx, r.backend, true, req.Plan, &resp.State, &resp.Diagnostics)
}

// Read compares the role in the backend with the state: a role deleted out of
// band leaves the state (the next plan creates it again), and a setting
// edited in Vault is refreshed into the state, so the next plan shows it as
// drift and apply writes the declared role back.
func (r *issuerResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	r.issuers().read(ctx, r.backend, req, resp)
	if resp.Diagnostics.HasError() || resp.State.Raw.IsNull() {
		return
	}
	var m issuerModel
	resp.Diagnostics.Append(resp.State.Get(ctx, &m)...)
	iss := m.toSchemas(ctx, &resp.Diagnostics)
	a, err := backend.GetObject[schemas.Authority](ctx, r.backend, schemas.KindAuthority, iss.Spec.Authority)
	if err != nil {
		return // the authority's own Read reports it
	}
	held, err := r.backend.ReadRole(ctx, iss, a)
	if errors.Is(err, backend.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read the Role", err.Error())
		return
	}
	iss.Spec = iss.Spec.WithRole(held)
	m.fromSchemas(iss)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *issuerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.issuers().save(ctx, r.backend, false, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *issuerResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	r.issuers().delete(ctx, r.backend, req, resp)
}

// ImportState takes an issuer's name in the catalog, or adopts a role
// certfleet did not create in a catalog authority's mount:
// `<authority>:<role>` (the issuer is named after the role). Adopting
// records the role as it is and changes nothing in Vault.
func (r *issuerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	authority, role, adopt := strings.Cut(req.ID, ":")
	if !adopt {
		resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
		return
	}
	if _, err := backend.AdoptIssuer(ctx, r.backend, role, authority, role); err != nil {
		resp.Diagnostics.AddError("Cannot Adopt the Role",
			fmt.Sprintf("%v. The import ID is an issuer's name in the catalog, or `<authority>:<role>` to adopt a role.", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), role)...)
}
