package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/certfleet/certfleet/schemas"
)

// subjectModel is the subject of an authority's CA certificate.
type subjectModel struct {
	Organizations       types.List `tfsdk:"organizations"`
	OrganizationalUnits types.List `tfsdk:"organizational_units"`
	Countries           types.List `tfsdk:"countries"`
	Localities          types.List `tfsdk:"localities"`
	Provinces           types.List `tfsdk:"provinces"`
}

type authorityModel struct {
	ID                    types.String  `tfsdk:"id"`
	Name                  types.String  `tfsdk:"name"`
	Type                  types.String  `tfsdk:"type"`
	Parent                types.String  `tfsdk:"parent"`
	Mount                 types.String  `tfsdk:"mount"`
	CommonName            types.String  `tfsdk:"common_name"`
	Subject               *subjectModel `tfsdk:"subject"`
	KeyType               types.String  `tfsdk:"key_type"`
	KeyBits               types.Int64   `tfsdk:"key_bits"`
	TTL                   types.String  `tfsdk:"ttl"`
	MaxPathLength         types.Int64   `tfsdk:"max_path_length"`
	PermittedDNSDomains   types.List    `tfsdk:"permitted_dns_domains"`
	IssuingCertificates   types.List    `tfsdk:"issuing_certificates"`
	CRLDistributionPoints types.List    `tfsdk:"crl_distribution_points"`
	OCSPServers           types.List    `tfsdk:"ocsp_servers"`
	RotateBefore          types.String  `tfsdk:"rotate_before"`
	RetirePreviousIssuer  types.String  `tfsdk:"retire_previous_issuer"`

	IssuerID             types.String `tfsdk:"issuer_id"`
	Certificate          types.String `tfsdk:"certificate"`
	CAChain              types.List   `tfsdk:"ca_chain"`
	SerialNumber         types.String `tfsdk:"serial_number"`
	NotBefore            types.String `tfsdk:"not_before"`
	NotAfter             types.String `tfsdk:"not_after"`
	RotatesAt            types.String `tfsdk:"rotates_at"`
	PreviousCertificates types.List   `tfsdk:"previous_certificates"`
}

// toSchemas builds the catalog object from the model (status excluded).
func (m *authorityModel) toSchemas(ctx context.Context, diags *diag.Diagnostics) *schemas.Authority {
	a := &schemas.Authority{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindAuthority},
		Metadata: schemas.ObjectMeta{Name: m.Name.ValueString()},
		Spec: schemas.AuthoritySpec{
			Type: schemas.AuthorityType(m.Type.ValueString()), Parent: m.Parent.ValueString(),
			Mount: m.Mount.ValueString(), CommonName: m.CommonName.ValueString(),
			KeyType: m.KeyType.ValueString(), KeyBits: int(m.KeyBits.ValueInt64()),
			TTL:                   schemas.Duration(m.TTL.ValueString()),
			PermittedDNSDomains:   listStrings(ctx, m.PermittedDNSDomains, diags),
			IssuingCertificates:   listStrings(ctx, m.IssuingCertificates, diags),
			CRLDistributionPoints: listStrings(ctx, m.CRLDistributionPoints, diags),
			OCSPServers:           listStrings(ctx, m.OCSPServers, diags),
			RotateBefore:          schemas.Duration(m.RotateBefore.ValueString()),
			RetirePreviousIssuer:  schemas.RetireMode(m.RetirePreviousIssuer.ValueString()),
		},
	}
	if !m.MaxPathLength.IsNull() && !m.MaxPathLength.IsUnknown() {
		n := int(m.MaxPathLength.ValueInt64())
		a.Spec.MaxPathLength = &n
	}
	if s := m.Subject; s != nil {
		a.Spec.Subject = &schemas.Subject{
			Organizations: listStrings(ctx, s.Organizations, diags), OrganizationalUnits: listStrings(ctx, s.OrganizationalUnits, diags),
			Countries: listStrings(ctx, s.Countries, diags), Localities: listStrings(ctx, s.Localities, diags),
			Provinces: listStrings(ctx, s.Provinces, diags),
		}
	}
	return a
}

// fromSchemas fills the model from a catalog object and its live status.
func (m *authorityModel) fromSchemas(a *schemas.Authority) {
	s := a.Spec
	m.ID = types.StringValue(a.Metadata.Name)
	m.Name = types.StringValue(a.Metadata.Name)
	m.Type = types.StringValue(string(s.Type))
	m.Parent = optString(s.Parent)
	m.Mount = types.StringValue(s.Mount)
	m.CommonName = types.StringValue(s.CommonName)
	m.Subject = nil
	if sub := s.Subject; sub != nil {
		m.Subject = &subjectModel{
			Organizations: stringList(sub.Organizations), OrganizationalUnits: stringList(sub.OrganizationalUnits),
			Countries: stringList(sub.Countries), Localities: stringList(sub.Localities), Provinces: stringList(sub.Provinces),
		}
	}
	m.KeyType = types.StringValue(s.KeyType)
	m.KeyBits = types.Int64Value(int64(s.KeyBits))
	m.TTL = types.StringValue(string(s.TTL))
	m.MaxPathLength = types.Int64Value(-1)
	if s.MaxPathLength != nil {
		m.MaxPathLength = types.Int64Value(int64(*s.MaxPathLength))
	}
	m.PermittedDNSDomains = stringList(s.PermittedDNSDomains)
	m.IssuingCertificates = stringList(s.IssuingCertificates)
	m.CRLDistributionPoints = stringList(s.CRLDistributionPoints)
	m.OCSPServers = stringList(s.OCSPServers)
	m.RotateBefore = types.StringValue(string(s.RotateBefore))
	m.RetirePreviousIssuer = types.StringValue(string(s.Retire()))
	m.setStatus(a.Status, s.RotationLead())
}

func (m *authorityModel) setStatus(st schemas.AuthorityStatus, lead time.Duration) {
	m.IssuerID = types.StringValue(st.IssuerID)
	m.Certificate = types.StringValue(st.Certificate)
	m.CAChain = knownList(st.CAChain)
	m.SerialNumber = types.StringValue(st.SerialNumber)
	m.NotBefore, m.NotAfter, m.RotatesAt = types.StringNull(), types.StringNull(), types.StringNull()
	if st.NotBefore != nil {
		m.NotBefore = types.StringValue(st.NotBefore.UTC().Format(time.RFC3339))
	}
	if st.NotAfter != nil {
		m.NotAfter = types.StringValue(st.NotAfter.UTC().Format(time.RFC3339))
		m.RotatesAt = types.StringValue(st.NotAfter.Add(-lead).UTC().Format(time.RFC3339))
	}
	prev := make([]string, 0, len(st.PreviousIssuers))
	for _, p := range st.PreviousIssuers {
		prev = append(prev, p.Certificate)
	}
	m.PreviousCertificates = knownList(prev)
}

// knownList is a computed list: empty rather than null when there is nothing.
func knownList(s []string) types.List {
	if len(s) == 0 {
		return types.ListValueMust(types.StringType, nil)
	}
	return stringList(s)
}
