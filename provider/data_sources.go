package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

var (
	_ datasource.DataSourceWithConfigure = (*authorityDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*trustBundleDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*catalogDataSource)(nil)
)

// ---------------------------------------------------------------------------
// certfleet_authority

type authorityDataSource struct{ backend backend.Backend }

// NewAuthorityDataSource is the certfleet_authority data source.
func NewAuthorityDataSource() datasource.DataSource { return &authorityDataSource{} }

type authorityDataModel struct {
	Name                 types.String `tfsdk:"name"`
	Type                 types.String `tfsdk:"type"`
	Mount                types.String `tfsdk:"mount"`
	IssuerID             types.String `tfsdk:"issuer_id"`
	Certificate          types.String `tfsdk:"certificate"`
	CAChain              types.List   `tfsdk:"ca_chain"`
	SerialNumber         types.String `tfsdk:"serial_number"`
	NotBefore            types.String `tfsdk:"not_before"`
	NotAfter             types.String `tfsdk:"not_after"`
	PreviousCertificates types.List   `tfsdk:"previous_certificates"`
}

func (d *authorityDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_authority"
}

func (d *authorityDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks up an authority in the catalog and reads its current CA certificate from the backend.",
		Attributes: map[string]schema.Attribute{
			"name":          schema.StringAttribute{Required: true, MarkdownDescription: "The authority's name."},
			"type":          computed("`root` or `intermediate`."),
			"mount":         computed("The PKI mount."),
			"issuer_id":     computed("The current (default) issuer's ID."),
			"certificate":   computed("The current CA certificate, PEM."),
			"ca_chain":      schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "The certificates above it, PEM, nearest first."},
			"serial_number": computed("The CA certificate's serial number."),
			"not_before":    computed("Valid from, RFC 3339."),
			"not_after":     computed("Expires, RFC 3339."),
			"previous_certificates": schema.ListAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Still-valid CA certificates of issuers replaced by rotation."},
		},
	}
}

func (d *authorityDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.backend, _ = dataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *authorityDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m authorityDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	a, st, err := readAuthority(ctx, d.backend, m.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot Read the Authority", err.Error())
		return
	}
	var full authorityModel
	a.Status = st
	full.fromSchemas(a)
	m.Type, m.Mount, m.IssuerID, m.Certificate = full.Type, full.Mount, full.IssuerID, full.Certificate
	m.CAChain, m.SerialNumber, m.NotBefore, m.NotAfter = full.CAChain, full.SerialNumber, full.NotBefore, full.NotAfter
	m.PreviousCertificates = full.PreviousCertificates
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// readAuthority reads an authority from the catalog and its live status.
func readAuthority(ctx context.Context, b backend.Backend, name string) (*schemas.Authority, schemas.AuthorityStatus, error) {
	a, err := backend.GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, name)
	if errors.Is(err, backend.ErrNotFound) {
		return nil, schemas.AuthorityStatus{}, fmt.Errorf("authority %q is not in the catalog of %s", name, b.Describe())
	}
	if err != nil {
		return nil, schemas.AuthorityStatus{}, err
	}
	st, err := b.ReadAuthority(ctx, a)
	return a, st, err
}

// ---------------------------------------------------------------------------
// certfleet_trust_bundle

type trustBundleDataSource struct {
	backend backend.Backend
	now     func() time.Time
}

// NewTrustBundleDataSource is the certfleet_trust_bundle data source.
func NewTrustBundleDataSource() datasource.DataSource { return &trustBundleDataSource{} }

type trustBundleModel struct {
	Authorities  types.List   `tfsdk:"authorities"`
	Certificates types.List   `tfsdk:"certificates"`
	PEM          types.String `tfsdk:"pem"`
}

func (d *trustBundleDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_trust_bundle"
}

func (d *trustBundleDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The CA certificates workloads should trust now: for each authority, its current CA certificate, " +
			"the still-valid ones of issuers replaced by rotation (so during a rotation both old and new), and the roots of its chain. " +
			"Expired certificates are left out; duplicates appear once.",
		Attributes: map[string]schema.Attribute{
			"authorities": schema.ListAttribute{Optional: true, ElementType: types.StringType,
				MarkdownDescription: "The authorities to include. Default: every authority in the catalog."},
			"certificates": schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "The CA certificates, PEM, one per element."},
			"pem":          schema.StringAttribute{Computed: true, MarkdownDescription: "The CA certificates concatenated, ready for a `ca.crt` file."},
		},
	}
}

func (d *trustBundleDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.backend, d.now = dataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *trustBundleDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m trustBundleModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	names := listStrings(ctx, m.Authorities, &resp.Diagnostics)
	if m.Authorities.IsNull() {
		cat, err := backend.LoadCatalog(ctx, d.backend)
		if err != nil {
			resp.Diagnostics.AddError("Cannot Read the Catalog", err.Error())
			return
		}
		names = slices.Sorted(maps.Keys(cat.Authorities))
	}
	var certs []string
	seen := map[string]bool{}
	add := func(p string) {
		p = strings.TrimSpace(p) + "\n"
		c, err := pki.ParseCertificate([]byte(p))
		if err != nil || c.NotAfter.Before(d.now()) || seen[p] {
			return
		}
		seen[p] = true
		certs = append(certs, p)
	}
	for _, n := range names {
		_, st, err := readAuthority(ctx, d.backend, n)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("authorities"), "Cannot Read the Authority", err.Error())
			return
		}
		add(st.Certificate)
		for _, p := range st.PreviousIssuers {
			add(p.Certificate)
		}
		if len(st.CAChain) > 0 {
			add(st.CAChain[len(st.CAChain)-1])
		}
	}
	m.Certificates = knownList(certs)
	m.PEM = types.StringValue(strings.Join(certs, ""))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// ---------------------------------------------------------------------------
// certfleet_catalog

type catalogDataSource struct{ backend backend.Backend }

// NewCatalogDataSource is the certfleet_catalog data source.
func NewCatalogDataSource() datasource.DataSource { return &catalogDataSource{} }

type catalogDataModel struct {
	Authorities types.List `tfsdk:"authorities"`
	Issuers     types.List `tfsdk:"issuers"`
	Policies    types.List `tfsdk:"policies"`
	Clusters    types.List `tfsdk:"clusters"`
}

func (d *catalogDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_catalog"
}

func (d *catalogDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	names := func(kind string) schema.ListAttribute {
		return schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Names of the " + kind + ", sorted."}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The names of everything in the catalog, by kind: what the reconciler will read.",
		Attributes: map[string]schema.Attribute{
			"authorities": names("authorities"), "issuers": names("issuers"), "policies": names("policies"), "clusters": names("clusters"),
		},
	}
}

func (d *catalogDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.backend, _ = dataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *catalogDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	cat, err := backend.LoadCatalog(ctx, d.backend)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read the Catalog", err.Error())
		return
	}
	m := catalogDataModel{
		Authorities: knownList(slices.Sorted(maps.Keys(cat.Authorities))),
		Issuers:     knownList(slices.Sorted(maps.Keys(cat.Issuers))),
		Policies:    knownList(slices.Sorted(maps.Keys(cat.Policies))),
		Clusters:    knownList(slices.Sorted(maps.Keys(cat.Clusters))),
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
