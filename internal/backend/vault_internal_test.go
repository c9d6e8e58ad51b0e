package backend

import (
	"strings"
	"testing"
)

func TestStringFieldNamesThePathInsteadOfPanicking(t *testing.T) {
	tests := []struct {
		name    string
		data    map[string]any
		want    string
		wantErr string
	}{
		{name: "a string field is returned", data: map[string]any{"certificate": "PEM"}, want: "PEM"},
		{name: "a missing field is an error naming the path", data: map[string]any{}, wantErr: `pki/sign/web has no "certificate"`},
		{name: "a null field is missing", data: map[string]any{"certificate": nil}, wantErr: `has no "certificate"`},
		{name: "another type is an error naming it", data: map[string]any{"certificate": 42.0}, wantErr: `"certificate" of type float64, want a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stringField(tt.data, "pki/sign/web", "certificate")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("%q, %v", got, err)
			}
		})
	}
}
