package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

var (
	_ resource.ResourceWithConfigure      = (*rolloutResource)(nil)
	_ resource.ResourceWithImportState    = (*rolloutResource)(nil)
	_ resource.ResourceWithValidateConfig = (*rolloutResource)(nil)
)

type rolloutResource struct{ backend backend.Backend }

// NewRolloutResource is certfleet_rollout.
func NewRolloutResource() resource.Resource { return &rolloutResource{} }

type rolloutWaveModel struct {
	Name            types.String `tfsdk:"name"`
	ClusterSelector types.Map    `tfsdk:"cluster_selector"`
}

type rolloutModel struct {
	ID              types.String       `tfsdk:"id"`
	Name            types.String       `tfsdk:"name"`
	Waves           []rolloutWaveModel `tfsdk:"waves"`
	MaxSharePerPass types.Float64      `tfsdk:"max_share_per_pass"`
	PauseOnFailures types.Int64        `tfsdk:"pause_on_failures"`
	Soak            types.String       `tfsdk:"soak"`
	MinCertificates types.Int64        `tfsdk:"min_certificates"`
}

func (m *rolloutModel) toSchemas(ctx context.Context, diags *diag.Diagnostics) *schemas.Rollout {
	r := &schemas.Rollout{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindRollout},
		Metadata: schemas.ObjectMeta{Name: m.Name.ValueString()},
		Spec: schemas.RolloutSpec{MaxSharePerPass: m.MaxSharePerPass.ValueFloat64(), PauseOnFailures: int(m.PauseOnFailures.ValueInt64()),
			Soak: schemas.Duration(m.Soak.ValueString()), MinCertificates: int(m.MinCertificates.ValueInt64())},
	}
	for _, w := range m.Waves {
		wave := schemas.RolloutWave{Name: w.Name.ValueString()}
		if !w.ClusterSelector.IsNull() {
			wave.ClusterSelector = &schemas.LabelSelector{MatchLabels: mapStrings(ctx, w.ClusterSelector, diags)}
		}
		r.Spec.Waves = append(r.Spec.Waves, wave)
	}
	return r
}

func (m *rolloutModel) fromSchemas(r *schemas.Rollout) {
	m.ID, m.Name = types.StringValue(r.Metadata.Name), types.StringValue(r.Metadata.Name)
	m.Waves = nil
	for _, w := range r.Spec.Waves {
		wave := rolloutWaveModel{Name: types.StringValue(w.Name), ClusterSelector: types.MapNull(types.StringType)}
		if w.ClusterSelector != nil {
			wave.ClusterSelector = stringMap(w.ClusterSelector.MatchLabels)
		}
		m.Waves = append(m.Waves, wave)
	}
	// Unset numbers stay null, so a configuration leaving them out plans nothing.
	m.MaxSharePerPass, m.PauseOnFailures, m.MinCertificates = types.Float64Null(), types.Int64Null(), types.Int64Null()
	if r.Spec.MaxSharePerPass != 0 {
		m.MaxSharePerPass = types.Float64Value(r.Spec.MaxSharePerPass)
	}
	if r.Spec.PauseOnFailures != 0 {
		m.PauseOnFailures = types.Int64Value(int64(r.Spec.PauseOnFailures))
	}
	if r.Spec.MinCertificates != 0 {
		m.MinCertificates = types.Int64Value(int64(r.Spec.MinCertificates))
	}
	m.Soak = optString(string(r.Spec.Soak))
}

func (r *rolloutResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_rollout"
}

func (r *rolloutResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "How mass reissues — an authority rotation, and a spec or issuer change touching many certificates — " +
			"go out: in waves of clusters chosen by label, staging before production, with a share per pass, a pause on failures " +
			"and a soak between waves. Ordinary renewals never wait for it. A catalog holds at most one.",
		Attributes: map[string]schema.Attribute{
			"id":   schema.StringAttribute{Computed: true, MarkdownDescription: "The rollout's name.", PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{Required: true, PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}, MarkdownDescription: "The rollout's name. Changing it replaces the rollout."},
			"waves": schema.ListNestedAttribute{Required: true,
				MarkdownDescription: "The waves, in order: a wave starts once the one before has nothing left and has soaked. A certificate goes with " +
					"the latest wave any of its clusters falls in (a cluster falls in the first wave whose selector matches); the last wave takes the rest.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{Required: true, MarkdownDescription: "The wave's name, shown by drift, the report and plan."},
					"cluster_selector": schema.MapAttribute{ElementType: types.StringType, Optional: true,
						MarkdownDescription: "Labels a cluster must carry to fall in this wave (`env = \"staging\"`). Only the last wave may leave it out."},
				}}},
			"max_share_per_pass": schema.Float64Attribute{Optional: true,
				MarkdownDescription: "The largest share (0 < share <= 1) of a wave's certificates one pass reissues; at least one is. Default 1."},
			"pause_on_failures": schema.Int64Attribute{Optional: true,
				MarkdownDescription: "The rollout pauses while more than this many certificates of the running wave failed their last attempt. Default 0: the first failure pauses it."},
			"soak": schema.StringAttribute{Optional: true, Validators: []validator.String{durationValidator{}},
				MarkdownDescription: "The least time between a wave's last reissue and the next wave's start (`2h`, `1d`). Default 0."},
			"min_certificates": schema.Int64Attribute{Optional: true,
				MarkdownDescription: "The fewest certificates a spec or issuer change must touch for the rollout to govern it; an authority rotation always is. Default 10."},
		},
	}
}

func (r *rolloutResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.backend, _ = dataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *rolloutResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m rolloutModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || anyUnknown(m.Name, m.MaxSharePerPass, m.PauseOnFailures, m.Soak, m.MinCertificates) {
		return
	}
	for _, w := range m.Waves {
		if anyUnknown(w.Name, w.ClusterSelector) {
			return
		}
	}
	addSchemaErrors(&resp.Diagnostics, "Rollout", schemas.Validate(m.toSchemas(ctx, &resp.Diagnostics)))
}

var rollouts = catalogResource[rolloutModel, *schemas.Rollout, *rolloutModel]{
	kind: schemas.KindRollout, tfType: "certfleet_rollout", get: getObject[schemas.Rollout](schemas.KindRollout),
	write: func(ctx context.Context, b backend.Backend, o *schemas.Rollout, diags *diag.Diagnostics) {
		if err := backend.PutRollout(ctx, b, o); err != nil {
			diags.AddAttributeError(path.Root("name"), "Cannot Write the Rollout", err.Error())
		}
	},
}

func (m *rolloutModel) objectName() string { return m.Name.ValueString() }

func (r *rolloutResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	rollouts.save(ctx, r.backend, true, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *rolloutResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	rollouts.read(ctx, r.backend, req, resp)
}

func (r *rolloutResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	rollouts.save(ctx, r.backend, false, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *rolloutResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	rollouts.delete(ctx, r.backend, req, resp)
}

func (r *rolloutResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}
