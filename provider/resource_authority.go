package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

var (
	_ resource.ResourceWithConfigure      = (*authorityResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*authorityResource)(nil)
	_ resource.ResourceWithImportState    = (*authorityResource)(nil)
	_ resource.ResourceWithValidateConfig = (*authorityResource)(nil)
)

type authorityResource struct {
	backend backend.Backend
	now     func() time.Time
}

// NewAuthorityResource is certfleet_authority.
func NewAuthorityResource() resource.Resource { return &authorityResource{} }

func (r *authorityResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_authority"
}

var (
	authorityTypes = []string{string(schemas.AuthorityRoot), string(schemas.AuthorityIntermediate)}
	keyTypes       = []string{"ec", "rsa", "ed25519"}
	retireModes    = []string{string(schemas.RetireKeep), string(schemas.RetireDisable), string(schemas.RetireDelete)}
)

func replaced(desc string) string { return desc + " Changing it replaces the authority." }

func (r *authorityResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	strList := func(desc string, replace bool) schema.ListAttribute {
		a := schema.ListAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: desc}
		if replace {
			a.MarkdownDescription = replaced(desc)
			a.PlanModifiers = []planmodifier.List{listplanmodifier.RequiresReplace()}
		}
		return a
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A certificate authority: a root, or an intermediate signed by its parent, in its own Vault PKI mount " +
			"(or the local backend). The private key is generated inside the backend and never leaves it. " +
			"Once `rotate_before` is reached, the plan rotates the authority: a new issuer with a new key in the same mount " +
			"becomes the default, and the old one stays until it expires, so certificates already issued remain valid.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The authority's name.", PlanModifiers: keep},
			"name": schema.StringAttribute{Required: true, PlanModifiers: replace,
				MarkdownDescription: replaced("The authority's name in the catalog; issuers and intermediates refer to it.")},
			"type": schema.StringAttribute{Required: true, PlanModifiers: replace,
				Validators:          []validator.String{stringvalidator.OneOf(authorityTypes...)},
				MarkdownDescription: replaced("`root` (self-signed) or `intermediate` (signed by `parent`).")},
			"parent": schema.StringAttribute{Optional: true, PlanModifiers: replace,
				MarkdownDescription: replaced("The authority that signs an intermediate; reference it (`certfleet_authority.root.name`) so Terraform creates it first. Empty for a root.")},
			"mount": schema.StringAttribute{Required: true, PlanModifiers: replace,
				MarkdownDescription: replaced("The Vault PKI mount path, created with a max lease TTL that covers the CA if missing. One authority per mount.")},
			"common_name": schema.StringAttribute{Required: true, PlanModifiers: replace,
				MarkdownDescription: replaced("The CA certificate's common name.")},
			"subject": schema.SingleNestedAttribute{Optional: true,
				PlanModifiers:       []planmodifier.Object{objectplanmodifier.RequiresReplace()},
				MarkdownDescription: replaced("Further subject fields of the CA certificate."),
				Attributes: map[string]schema.Attribute{
					"organizations":        schema.ListAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "O."},
					"organizational_units": schema.ListAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "OU."},
					"countries":            schema.ListAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "C."},
					"localities":           schema.ListAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "L."},
					"provinces":            schema.ListAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "ST."},
				}},
			"key_type": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("ec"),
				PlanModifiers: replace, Validators: []validator.String{stringvalidator.OneOf(keyTypes...)},
				MarkdownDescription: replaced(oneOfDescription(keyTypes...) + " Default `ec`.")},
			"key_bits": schema.Int64Attribute{Optional: true, Computed: true,
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()},
				MarkdownDescription: replaced("2048, 3072 or 4096 for `rsa`; 256, 384 or 521 for `ec`; 0 for `ed25519`. Default 256 for `ec`, 2048 for `rsa`.")},
			"ttl": schema.StringAttribute{Optional: true, Computed: true, PlanModifiers: replace,
				Validators:          []validator.String{durationValidator{}},
				MarkdownDescription: replaced("The CA certificate's lifetime, e.g. `87600h` or `3650d`. Default `87600h` (10 years) for a root, `43800h` (5 years) for an intermediate, which is also cut to its parent's expiry.")},
			"max_path_length": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(-1),
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()},
				MarkdownDescription: replaced("How many intermediates may follow this CA; -1 for no limit. Default -1.")},
			"permitted_dns_domains":   strList("Name constraints: the DNS domains certificates under this CA may carry. Default: none (no constraint).", true),
			"issuing_certificates":    strList("URLs where the CA certificate is published (AIA caIssuers). On Vault, a URL naming this mount's CA (`…/v1/<mount>/ca`) is written as the certificate of the issuer that signs each certificate (`…/v1/<mount>/issuer/<issuer id>/der`), so a leaf of a rotated-out CA still fetches the CA that signed it; other URLs are written as given. Updated in place. Default: none.", false),
			"crl_distribution_points": strList("URLs of the CRL. On Vault, a URL naming this mount's CRL (`…/v1/<mount>/crl`) is written as the CRL of the issuer that signs each certificate (`…/v1/<mount>/issuer/<issuer id>/crl/der`), which keeps listing its revoked serials after a rotation; other URLs are written as given. Updated in place. Default: none.", false),
			"ocsp_servers":            strList("URLs of OCSP responders. Updated in place. Default: none.", false),
			"rotate_before": schema.StringAttribute{Optional: true, Computed: true,
				Validators:          []validator.String{durationValidator{}},
				MarkdownDescription: "How long before the CA certificate expires the authority is rotated. Default: a third of `ttl`."},
			"retire_previous_issuer": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(string(schemas.RetireKeep)),
				Validators: []validator.String{stringvalidator.OneOf(retireModes...)},
				MarkdownDescription: "What becomes of an issuer rotation replaced, once the reconciler finds no delivered certificate signed by it and it has left every trust bundle. " +
					oneOfDescription(retireModes...) + " `keep` leaves it in the mount until it expires; `disable` leaves it signing only its CRL " +
					"(Vault usage `read-only,crl-signing`); `delete` deletes it, once no certificate it signed is revoked and unexpired (until then it is disabled). Default `keep`."},

			"issuer_id":     schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "The backend's ID of the current (default) issuer."},
			"certificate":   schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "The current CA certificate, PEM."},
			"ca_chain":      schema.ListAttribute{Computed: true, ElementType: types.StringType, PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()}, MarkdownDescription: "The certificates above this CA up to the root, PEM, nearest first; empty for a root."},
			"serial_number": schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "The CA certificate's serial number, colon-separated hex."},
			"not_before":    schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "When the CA certificate becomes valid, RFC 3339."},
			"not_after":     schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "When the CA certificate expires, RFC 3339."},
			"rotates_at":    schema.StringAttribute{Computed: true, MarkdownDescription: "When the plan will rotate the authority: `not_after` minus `rotate_before`, RFC 3339."},
			"previous_certificates": schema.ListAttribute{Computed: true, ElementType: types.StringType, PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "CA certificates of earlier issuers replaced by rotation that have not expired; workloads must still trust them."},
		},
	}
}

func (r *authorityResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.backend, r.now = dataFrom(req.ProviderData, &resp.Diagnostics)
}

// ValidateConfig checks the authority with the same code the reconciler
// uses, as soon as the values are known.
func (r *authorityResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m authorityModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || anyUnknown(m.Name, m.Type, m.Parent, m.Mount, m.CommonName, m.KeyType, m.KeyBits, m.TTL, m.RotateBefore, m.MaxPathLength) {
		return
	}
	if m.KeyType.IsNull() {
		m.KeyType = types.StringValue("ec")
	}
	a := m.toSchemas(ctx, &resp.Diagnostics)
	if m.MaxPathLength.IsNull() {
		a.Spec.MaxPathLength = nil
	}
	addSchemaErrors(&resp.Diagnostics, "Authority", schemas.Validate(a))
}

// defaultKeyBits is the key size Vault picks for a key type.
func defaultKeyBits(keyType string) int64 {
	switch keyType {
	case "rsa":
		return 2048
	case "ed25519":
		return 0
	}
	return 256
}

// ModifyPlan fills the defaults that depend on other attributes, and plans a
// rotation once rotate_before is reached, saying why.
func (r *authorityResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan authorityModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.KeyBits.IsUnknown() && !plan.KeyType.IsUnknown() {
		plan.KeyBits = types.Int64Value(defaultKeyBits(plan.KeyType.ValueString()))
	}
	if plan.TTL.IsUnknown() && !plan.Type.IsUnknown() {
		a := schemas.AuthoritySpec{Type: schemas.AuthorityType(plan.Type.ValueString())}
		plan.TTL = types.StringValue(schemas.FormatDuration(a.Lifetime()))
	}
	var lead time.Duration
	if plan.RotateBefore.IsUnknown() && !plan.TTL.IsUnknown() {
		ttl, _ := schemas.Duration(plan.TTL.ValueString()).Parse()
		lead = (ttl / 3).Truncate(time.Second)
		plan.RotateBefore = types.StringValue(schemas.FormatDuration(lead))
	} else {
		lead, _ = schemas.Duration(plan.RotateBefore.ValueString()).Parse()
	}
	plan.RotatesAt = types.StringUnknown()
	if !req.State.Raw.IsNull() {
		var state authorityModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if notAfter, err := time.Parse(time.RFC3339, state.NotAfter.ValueString()); err == nil && !plan.RotateBefore.IsUnknown() {
			rotatesAt := notAfter.Add(-lead)
			plan.RotatesAt = types.StringValue(rotatesAt.UTC().Format(time.RFC3339))
			if now := r.now(); !now.Before(rotatesAt) {
				for _, v := range []*types.String{&plan.IssuerID, &plan.Certificate, &plan.SerialNumber, &plan.NotBefore, &plan.NotAfter, &plan.RotatesAt} {
					*v = types.StringUnknown()
				}
				plan.CAChain = types.ListUnknown(types.StringType)
				plan.PreviousCertificates = types.ListUnknown(types.StringType)
				resp.Diagnostics.AddWarning("Authority Will Be Rotated",
					fmt.Sprintf("Authority %q replaces its CA certificate: it expires %s and rotate_before (%s) was reached at %s. "+
						"Apply adds a new issuer with a new key to mount %q and makes it the default; the old issuer stays until it expires, "+
						"so certificates it issued remain valid. Publish the trust bundle (both CA certificates) to workloads.",
						state.Name.ValueString(), notAfter.UTC().Format(time.RFC3339), plan.RotateBefore.ValueString(),
						rotatesAt.UTC().Format(time.RFC3339), state.Mount.ValueString()))
			}
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *authorityResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan authorityModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	a := plan.toSchemas(ctx, &resp.Diagnostics)
	if err := backend.CreateAuthority(ctx, r.backend, a); err != nil {
		switch {
		case errors.Is(err, backend.ErrExists):
			resp.Diagnostics.AddAttributeError(path.Root("name"), "Authority Already Exists",
				err.Error()+fmt.Sprintf("; import it with `terraform import certfleet_authority.<name> %s`", a.Metadata.Name))
		case errors.Is(err, backend.ErrMountInUse):
			resp.Diagnostics.AddAttributeError(path.Root("mount"), "Mount Already Used", err.Error())
		case errors.Is(err, backend.ErrUnknownAuthority):
			resp.Diagnostics.AddAttributeError(path.Root("parent"), "Unknown Parent Authority",
				err.Error()+"; refer to it as parent = certfleet_authority.<name>.name so Terraform creates it first")
		default:
			resp.Diagnostics.AddError("Cannot Create the Authority", err.Error())
		}
		return
	}
	plan.fromSchemas(a)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *authorityResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state authorityModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	a, err := backend.GetObject[schemas.Authority](ctx, r.backend, schemas.KindAuthority, state.Name.ValueString())
	if errors.Is(err, backend.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read the Catalog", err.Error())
		return
	}
	st, err := r.backend.ReadAuthority(ctx, a)
	if errors.Is(err, backend.ErrNotFound) {
		// The mount is gone: the authority must be created again.
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read the Authority", err.Error())
		return
	}
	a.Status = st
	state.fromSchemas(a)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *authorityResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan authorityModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	a := plan.toSchemas(ctx, &resp.Diagnostics)
	// An unknown certificate is a rotation ModifyPlan planned.
	update := backend.ConfigureAuthority
	if plan.Certificate.IsUnknown() {
		update = backend.RotateAuthority
	}
	if err := update(ctx, r.backend, a); err != nil {
		if errors.Is(err, backend.ErrUnknownAuthority) {
			resp.Diagnostics.AddAttributeError(path.Root("parent"), "Cannot Read the Parent Authority", err.Error())
			return
		}
		resp.Diagnostics.AddError("Cannot Update the Authority", err.Error())
		return
	}
	plan.fromSchemas(a)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *authorityResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state authorityModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	a := state.toSchemas(ctx, &resp.Diagnostics)
	if err := r.backend.DeleteAuthority(ctx, a); err != nil {
		resp.Diagnostics.AddError("Cannot Delete the Authority", err.Error())
		return
	}
	if err := backend.DeleteObject(ctx, r.backend, schemas.KindAuthority, a.Metadata.Name); err != nil {
		resp.Diagnostics.AddError("Cannot Write the Catalog", err.Error())
	}
}

// ImportState takes an authority's name in the catalog, or adopts a PKI mount
// certfleet did not create (made with terraform-provider-vault or by hand):
// `<mount>` (the authority is named after it) or `<name>:<mount>`. Adopting
// records the mount's CA in the catalog as it is and changes nothing in the
// mount, so nothing is reissued; the next plan shows what the configuration
// declares differently.
func (r *authorityResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	name, mount, named := strings.Cut(req.ID, ":")
	if !named {
		_, err := backend.GetObject[schemas.Authority](ctx, r.backend, schemas.KindAuthority, req.ID)
		if !errors.Is(err, backend.ErrNotFound) {
			resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
			return
		}
		name, mount = nameOfMount(req.ID), req.ID
	}
	if _, err := backend.AdoptAuthority(ctx, r.backend, name, mount); err != nil {
		resp.Diagnostics.AddError("Cannot Adopt the Mount",
			fmt.Sprintf("%v. The import ID is an authority's name in the catalog, a PKI mount to adopt (`<mount>`), or `<name>:<mount>`.", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
}

// nameOfMount is the catalog name an adopted mount gets: its path with the
// characters a name cannot hold turned into "-".
func nameOfMount(mount string) string {
	return strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, mount), "-.")
}
