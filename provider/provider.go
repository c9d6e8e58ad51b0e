// Package provider is certfleet's Terraform provider: it declares the PKI
// (authorities, issuers, policies, clusters) that the reconciler issues from.
package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

var _ provider.Provider = (*certfleetProvider)(nil)

type certfleetProvider struct {
	version string
}

// New returns a constructor of the provider, as providerserver.Serve and
// terraform-plugin-testing's ProtoV6ProviderFactories expect.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &certfleetProvider{version: version} }
}

func (p *certfleetProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "certfleet"
	resp.Version = p.version
}

func (p *certfleetProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The certfleet provider declares a fleet's PKI: certificate authorities, issuers, " +
			"certificate policies and target clusters, which the certfleet reconciler reads to issue certificates.",
	}
}

func (p *certfleetProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

func (p *certfleetProvider) Resources(context.Context) []func() resource.Resource {
	return nil
}

func (p *certfleetProvider) DataSources(context.Context) []func() datasource.DataSource {
	return nil
}
