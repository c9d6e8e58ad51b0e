// Package provider is certfleet's Terraform provider: it declares the PKI
// (authorities, issuers, policies, clusters) that the reconciler issues from,
// in Vault or in the local backend. Every rule about what an object may look
// like comes from the schemas package, the one the reconciler uses too.
package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/certfleet/certfleet/internal/backend"
)

var _ provider.Provider = (*certfleetProvider)(nil)

type certfleetProvider struct {
	version string
	// now is the clock resources plan rotations with; tests move it.
	now func() time.Time
}

// New returns a constructor of the provider, as providerserver.Serve and
// terraform-plugin-testing's ProtoV6ProviderFactories expect.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &certfleetProvider{version: version, now: time.Now} }
}

// providerData is what Configure hands to resources and data sources.
type providerData struct {
	backend backend.Backend
	now     func() time.Time
}

type providerModel struct {
	Backend types.String `tfsdk:"backend"`
	Vault   *vaultModel  `tfsdk:"vault"`
	Local   *localModel  `tfsdk:"local"`
}

type vaultModel struct {
	Address       types.String `tfsdk:"address"`
	Token         types.String `tfsdk:"token"`
	Namespace     types.String `tfsdk:"namespace"`
	CatalogMount  types.String `tfsdk:"catalog_mount"`
	CACert        types.String `tfsdk:"ca_cert"`
	SkipTLSVerify types.Bool   `tfsdk:"skip_tls_verify"`
}

type localModel struct {
	Path types.String `tfsdk:"path"`
}

// backendTypes are the backends, described once for docs and validation.
var backendTypes = []string{"vault", "local"}

func (p *certfleetProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "certfleet"
	resp.Version = p.version
}

func (p *certfleetProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The certfleet provider declares a fleet's PKI — certificate authorities, issuers, " +
			"certificate policies and target clusters — in Vault's PKI engine (or the local backend), and writes the " +
			"catalog that the certfleet reconciler reads to issue, deliver and renew certificates.",
		Attributes: map[string]schema.Attribute{
			"backend": schema.StringAttribute{
				MarkdownDescription: "Where the PKI and the catalog live: `vault` (PKI mounts and roles, the catalog in a KV v2 mount) " +
					"or `local` (a directory; CA keys in files of mode 0600). Default `local`.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(backendTypes...)},
			},
		},
		Blocks: map[string]schema.Block{
			"vault": schema.SingleNestedBlock{
				MarkdownDescription: "How to reach Vault, for `backend = \"vault\"`. Each setting falls back to the environment variable Vault's CLI reads.",
				Attributes: map[string]schema.Attribute{
					"address": schema.StringAttribute{Optional: true,
						MarkdownDescription: "Vault's address, e.g. `https://vault.example.com:8200`. Default: `VAULT_ADDR`."},
					"token": schema.StringAttribute{Optional: true, Sensitive: true,
						MarkdownDescription: "A Vault token. Default: `VAULT_TOKEN`. Never written to state."},
					"namespace": schema.StringAttribute{Optional: true,
						MarkdownDescription: "A Vault Enterprise namespace. Default: `VAULT_NAMESPACE`, else none."},
					"catalog_mount": schema.StringAttribute{Optional: true,
						MarkdownDescription: "The KV v2 mount holding the catalog, created if missing. Default `certfleet`."},
					"ca_cert": schema.StringAttribute{Optional: true,
						MarkdownDescription: "A PEM file of the CA that verifies Vault's TLS certificate. Default: `VAULT_CACERT`, else the system's roots."},
					"skip_tls_verify": schema.BoolAttribute{Optional: true,
						MarkdownDescription: "Do not verify Vault's TLS certificate (for tests only). Default `false`."},
				},
			},
			"local": schema.SingleNestedBlock{
				MarkdownDescription: "The local backend's directory, for `backend = \"local\"`.",
				Attributes: map[string]schema.Attribute{
					"path": schema.StringAttribute{Optional: true,
						MarkdownDescription: "The state directory. Default: `certfleet` under the user's configuration directory (`~/.config/certfleet`)."},
				},
			},
		},
	}
}

func (p *certfleetProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cfg := backend.Config{Type: m.Backend.ValueString()}
	if cfg.Type == "" {
		cfg.Type = "local"
	}
	if m.Vault != nil {
		cfg.Vault = backend.VaultConfig{
			Address: m.Vault.Address.ValueString(), Token: m.Vault.Token.ValueString(),
			Namespace: m.Vault.Namespace.ValueString(), CatalogMount: m.Vault.CatalogMount.ValueString(),
			CACert: m.Vault.CACert.ValueString(), SkipTLSVerify: m.Vault.SkipTLSVerify.ValueBool(),
		}
	}
	if m.Local != nil {
		cfg.Local.Path = m.Local.Path.ValueString()
	}
	if cfg.Type == "vault" {
		cfg.Vault = cfg.Vault.WithEnv()
		if err := cfg.Vault.Check("the provider's vault block"); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("vault"), "Missing Vault Settings", err.Error())
			return
		}
	}
	b, err := backend.Open(ctx, cfg)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Open the Backend", err.Error())
		return
	}
	tflog.Debug(ctx, "certfleet backend opened", map[string]any{"backend": b.Describe()})
	data := &providerData{backend: b, now: p.now}
	resp.ResourceData = data
	resp.DataSourceData = data
}

func (p *certfleetProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewAuthorityResource, NewIssuerResource, NewPolicyResource, NewClusterResource, NewRolloutResource}
}

func (p *certfleetProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewAuthorityDataSource, NewTrustBundleDataSource, NewCatalogDataSource}
}
