package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

var (
	_ resource.ResourceWithConfigure      = (*clusterResource)(nil)
	_ resource.ResourceWithImportState    = (*clusterResource)(nil)
	_ resource.ResourceWithValidateConfig = (*clusterResource)(nil)
)

type clusterResource struct{ backend backend.Backend }

// NewClusterResource is certfleet_cluster.
func NewClusterResource() resource.Resource { return &clusterResource{} }

type credentialsModel struct {
	VaultKVPath       types.String `tfsdk:"vault_kv_path"`
	KubeconfigContext types.String `tfsdk:"kubeconfig_context"`
}

type clusterModel struct {
	ID            types.String      `tfsdk:"id"`
	Name          types.String      `tfsdk:"name"`
	Server        types.String      `tfsdk:"server"`
	CACertificate types.String      `tfsdk:"ca_certificate"`
	Labels        types.Map         `tfsdk:"labels"`
	Credentials   *credentialsModel `tfsdk:"credentials"`
}

func (m *clusterModel) toSchemas(ctx context.Context, diags *diag.Diagnostics) *schemas.Cluster {
	c := &schemas.Cluster{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindCluster},
		Metadata: schemas.ObjectMeta{Name: m.Name.ValueString(), Labels: mapStrings(ctx, m.Labels, diags)},
		Spec:     schemas.ClusterSpec{Server: m.Server.ValueString(), CACertificate: m.CACertificate.ValueString()},
	}
	if m.Credentials != nil {
		c.Spec.Credentials = schemas.ClusterCredentials{VaultKVPath: m.Credentials.VaultKVPath.ValueString(),
			KubeconfigContext: m.Credentials.KubeconfigContext.ValueString()}
	}
	return c
}

func (m *clusterModel) fromSchemas(c *schemas.Cluster) {
	m.ID, m.Name = types.StringValue(c.Metadata.Name), types.StringValue(c.Metadata.Name)
	m.Server, m.CACertificate = optString(c.Spec.Server), optString(c.Spec.CACertificate)
	m.Labels = stringMap(c.Metadata.Labels)
	m.Credentials = &credentialsModel{VaultKVPath: optString(c.Spec.Credentials.VaultKVPath),
		KubeconfigContext: optString(c.Spec.Credentials.KubeconfigContext)}
}

func (r *clusterResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster"
}

func (r *clusterResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Kubernetes cluster that certificates are delivered to. It records where the API server is and " +
			"where the reconciler finds credentials; it never holds a token, so none reaches Terraform state.",
		Attributes: map[string]schema.Attribute{
			"id":   schema.StringAttribute{Computed: true, MarkdownDescription: "The cluster's name.", PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{Required: true, PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}, MarkdownDescription: "The cluster's name; certificate targets name it in `cluster`. Changing it replaces the cluster."},
			"server": schema.StringAttribute{Optional: true,
				MarkdownDescription: "The API server's https URL. Required with `vault_kv_path` credentials; with a kubeconfig context the context's server is used when unset."},
			"ca_certificate": schema.StringAttribute{Optional: true, MarkdownDescription: "PEM certificate that verifies the API server. Default: the kubeconfig context's, or the system's roots."},
			"labels": schema.MapAttribute{ElementType: types.StringType, Optional: true,
				MarkdownDescription: "Labels that certificate `clusterSelector`s match (`env = \"prod\"`). Default: none."},
			"credentials": schema.SingleNestedAttribute{Required: true,
				MarkdownDescription: "Where the reconciler finds credentials; set exactly one.",
				Attributes: map[string]schema.Attribute{
					"vault_kv_path": schema.StringAttribute{Optional: true,
						MarkdownDescription: "A KV v2 path, `<mount>/<path>`, whose `token` field is a bearer token for the API server."},
					"kubeconfig_context": schema.StringAttribute{Optional: true,
						MarkdownDescription: "A context of the reconciler's kubeconfig."},
				}},
		},
	}
}

func (r *clusterResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.backend, _ = dataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *clusterResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m clusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || anyUnknown(m.Name, m.Server, m.CACertificate, m.Labels) || m.Credentials == nil ||
		anyUnknown(m.Credentials.VaultKVPath, m.Credentials.KubeconfigContext) {
		return
	}
	addSchemaErrors(&resp.Diagnostics, "Cluster", schemas.Validate(m.toSchemas(ctx, &resp.Diagnostics)))
}

var clusters = catalogResource[clusterModel, *schemas.Cluster, *clusterModel]{
	kind: schemas.KindCluster, tfType: "certfleet_cluster", get: getObject[schemas.Cluster](schemas.KindCluster), write: putObject[*schemas.Cluster],
}

func (m *clusterModel) objectName() string { return m.Name.ValueString() }

func (r *clusterResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	clusters.save(ctx, r.backend, true, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *clusterResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	clusters.read(ctx, r.backend, req, resp)
}

func (r *clusterResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	clusters.save(ctx, r.backend, false, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *clusterResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	clusters.delete(ctx, r.backend, req, resp)
}

func (r *clusterResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}
