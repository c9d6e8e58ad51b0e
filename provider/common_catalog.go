package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"

	"github.com/certfleet/certfleet/internal/backend"
)

// catalogModel is a resource model that maps to a catalog object O.
type catalogModel[M, O any] interface {
	*M
	toSchemas(context.Context, *diag.Diagnostics) O
	fromSchemas(O)
	objectName() string
}

// catalogResource is the plumbing of a resource kept in the catalog: how to
// read its object and write it. Issuers, policies and clusters share it;
// authorities, which also rotate, have their own.
type catalogResource[M any, O any, P catalogModel[M, O]] struct {
	kind   string // Policy, Cluster, …
	tfType string // certfleet_policy, …
	get    func(ctx context.Context, b backend.Backend, name string) (O, error)
	// write stores the object (and what goes with it, such as a Vault role);
	// it reports its own errors.
	write func(ctx context.Context, b backend.Backend, o O, diags *diag.Diagnostics)
	// remove deletes what goes with the object before the catalog entry.
	remove func(ctx context.Context, b backend.Backend, o O) error
}

// save is Create and Update: the plan becomes the object, written, and the
// object as stored becomes the state.
func (c catalogResource[M, O, P]) save(ctx context.Context, b backend.Backend, create bool, plan tfsdk.Plan, state *tfsdk.State, diags *diag.Diagnostics) {
	var m M
	diags.Append(plan.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	p := P(&m)
	if create {
		if _, err := c.get(ctx, b, p.objectName()); err == nil {
			diags.AddAttributeError(path.Root("name"), c.kind+" Already Exists",
				fmt.Sprintf("the catalog of %s already has %s %q; import it with `terraform import %s.<name> %s`",
					b.Describe(), c.kind, p.objectName(), c.tfType, p.objectName()))
			return
		}
	}
	o := p.toSchemas(ctx, diags)
	if diags.HasError() {
		return
	}
	c.write(ctx, b, o, diags)
	if diags.HasError() {
		return
	}
	p.fromSchemas(o)
	diags.Append(state.Set(ctx, p)...)
}

// read refreshes the state from the catalog; an object gone from the
// catalog leaves the state, so the next plan creates it again.
func (c catalogResource[M, O, P]) read(ctx context.Context, b backend.Backend, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m M
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p := P(&m)
	o, err := c.get(ctx, b, p.objectName())
	if errors.Is(err, backend.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read the Catalog", err.Error())
		return
	}
	p.fromSchemas(o)
	resp.Diagnostics.Append(resp.State.Set(ctx, p)...)
}

// delete removes what goes with the object, then the catalog entry.
func (c catalogResource[M, O, P]) delete(ctx context.Context, b backend.Backend, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m M
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p := P(&m)
	if c.remove != nil {
		if err := c.remove(ctx, b, p.toSchemas(ctx, &resp.Diagnostics)); err != nil {
			resp.Diagnostics.AddError("Cannot Delete the "+c.kind, err.Error())
			return
		}
	}
	if err := backend.DeleteObject(ctx, b, c.kind, p.objectName()); err != nil {
		resp.Diagnostics.AddError("Cannot Write the Catalog", err.Error())
	}
}

// putObject is the write of objects that live in the catalog alone.
func putObject[O any](ctx context.Context, b backend.Backend, o O, diags *diag.Diagnostics) {
	if err := backend.PutObject(ctx, b, o); err != nil {
		diags.AddError("Cannot Write the Catalog", err.Error())
	}
}

// getObject reads a catalog object of a kind.
func getObject[T any](kind string) func(context.Context, backend.Backend, string) (*T, error) {
	return func(ctx context.Context, b backend.Backend, name string) (*T, error) {
		return backend.GetObject[T](ctx, b, kind, name)
	}
}
