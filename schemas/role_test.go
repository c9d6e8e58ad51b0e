package schemas

import (
	"reflect"
	"testing"
)

func TestWithRoleKeepsWhatMeansTheSameAndShowsWhatDiffers(t *testing.T) {
	yes, no := true, false
	declared := IssuerSpec{Authority: "root", AllowedDomains: []string{"example.test"}, AllowSubdomains: true,
		KeyType: "ec", TTL: "3d", MaxTTL: "72h"}
	for _, tc := range []struct {
		name string
		held IssuerSpec
		want IssuerSpec
	}{
		{
			name: "the role as Vault reports it after certfleet wrote it is no drift",
			held: IssuerSpec{Authority: "root", AllowedDomains: []string{"example.test"}, AllowSubdomains: true,
				KeyType: "ec", KeyBits: 256, TTL: "259200s", MaxTTL: "3d", ServerFlag: &yes, ClientFlag: &yes},
			want: declared,
		},
		{
			name: "a domain added in Vault by hand shows up",
			held: IssuerSpec{Authority: "root", AllowedDomains: []string{"example.test", "evil.test"}, AllowSubdomains: true,
				KeyType: "ec", KeyBits: 256, TTL: "3d", MaxTTL: "3d", ServerFlag: &yes, ClientFlag: &yes},
			want: func() IssuerSpec { d := declared; d.AllowedDomains = []string{"example.test", "evil.test"}; return d }(),
		},
		{
			name: "a longer max TTL, any name, no client flag and a bigger key show up",
			held: IssuerSpec{Authority: "root", AllowedDomains: []string{"example.test"}, AllowSubdomains: true, AllowAnyName: true,
				KeyType: "ec", KeyBits: 384, TTL: "3d", MaxTTL: "8760h", ServerFlag: &yes, ClientFlag: &no},
			want: func() IssuerSpec {
				d := declared
				d.AllowAnyName, d.KeyBits, d.MaxTTL, d.ClientFlag = true, 384, "8760h", &no
				return d
			}(),
		},
		{
			name: "a key type changed to rsa shows up with Vault's size for it",
			held: IssuerSpec{Authority: "root", AllowedDomains: []string{"example.test"}, AllowSubdomains: true,
				KeyType: "rsa", KeyBits: 2048, TTL: "3d", MaxTTL: "3d"},
			want: func() IssuerSpec { d := declared; d.KeyType, d.KeyBits = "rsa", 2048; return d }(),
		},
		{
			name: "a default TTL removed in Vault shows up as none",
			held: IssuerSpec{Authority: "root", AllowedDomains: []string{"example.test"}, AllowSubdomains: true,
				KeyType: "ec", MaxTTL: "3d"},
			want: func() IssuerSpec { d := declared; d.TTL = ""; return d }(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := declared.WithRole(tc.held); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("WithRole =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}
