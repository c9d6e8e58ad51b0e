package render_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

func TestZZSlow(t *testing.T) {
	cat, _ := schemas.DecodeCatalog("c.yaml", []byte(fuzzCatalog))
	files, _ := filepath.Glob("/root/.cache/go-build/fuzz/github.com/certfleet/certfleet/reconciler/render/FuzzRender/*")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		lines := strings.Split(string(data), "\n")
		var vals [][]byte
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "[]byte(") {
				s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(l, "[]byte("), ")"))
				if err != nil { t.Log(err) }
				vals = append(vals, []byte(s))
			}
		}
		for _, c := range []*schemas.Catalog{cat, nil} {
			snap := &source.Snapshot{Files: []source.File{{Path: "a.yaml", Data: vals[0]}, {Path: "b.yaml", Data: vals[1]}}}
			start := time.Now()
			render.Render(snap, c)
			if d := time.Since(start); d > 20*time.Millisecond {
				t.Logf("%s: %v (%d+%d bytes)", filepath.Base(f), d, len(vals[0]), len(vals[1]))
			}
		}
	}
}
