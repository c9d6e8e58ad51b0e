package faults_test

import (
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// secrets are the secret values the suite handed out or saw delivered:
// tokens, passwords, and every private key read from a target. The sweep
// looks for each of them in everything the suite produced.
var secrets = &secretSet{windows: map[string]string{}}

type secretSet struct {
	mu      sync.Mutex
	windows map[string]string // a 24-character window of the secret → what it is
}

// window is the length of the piece of a secret searched for: long enough
// that it does not occur by chance, short enough that a secret split over
// lines (a PEM body, JSON escapes) still shows one whole.
const window = 24

func isB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// runs splits s into maximal runs of base64 characters (hex, tokens and
// PEM bodies are made of them).
func runs(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r > 127 || !isB64(byte(r)) })
}

// add registers a secret by a window of its longest base64 run.
func (s *secretSet) add(what, secret string) {
	best := ""
	for _, r := range runs(secret) {
		if len(r) > len(best) {
			best = r
		}
	}
	if len(best) < window {
		panic(fmt.Sprintf("secret %s is too short to search for", what))
	}
	mid := (len(best) - window) / 2
	s.mu.Lock()
	s.windows[best[mid:mid+window]] = what
	s.mu.Unlock()
}

// addPEM registers a private key by a window of its body's first line.
func (s *secretSet) addPEM(keyPEM []byte) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return
	}
	body := string(pem.EncodeToMemory(&pem.Block{Type: "K", Bytes: b.Bytes}))
	lines := strings.Split(body, "\n")
	if len(lines) < 2 || len(lines[1]) < 40+window {
		return
	}
	// Skip the ASN.1 header bytes, the same for every key of a kind.
	s.mu.Lock()
	s.windows[lines[1][40:40+window]] = "a delivered private key"
	s.mu.Unlock()
}

var pemKey = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)

// sweepSecrets searches every artifact for a PEM private key block and for
// every registered secret, and adds the sweep's row.
func sweepSecrets() {
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	files, bytes, lines := 0, 0, 0
	var found []string
	filepath.WalkDir(artifacts, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			found = append(found, fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		files++
		bytes += len(b)
		lines += strings.Count(string(b), "\n")
		rel, _ := filepath.Rel(artifacts, p)
		if loc := pemKey.FindIndex(b); loc != nil {
			found = append(found, fmt.Sprintf("%s: a PEM private key marker at byte %d", rel, loc[0]))
		}
		for _, r := range runs(string(b)) {
			for i := 0; i+window <= len(r); i++ {
				if what, ok := secrets.windows[r[i:i+window]]; ok {
					found = append(found, fmt.Sprintf("%s: %s", rel, what))
					break
				}
			}
		}
		return nil
	})
	for _, f := range found {
		fmt.Fprintln(os.Stderr, "secrets sweep:", f)
	}
	addRow(row{
		scenario: "Secrets sweep",
		reps:     fmt.Sprintf("%d files", files),
		measured: fmt.Sprintf("every log, report, audit log, metrics scrape and page (%d lines, %.1f MB) searched for PEM private keys and %d secrets (tokens, passwords, delivered keys)", lines, float64(bytes)/1e6, len(secrets.windows)),
		result:   fmt.Sprintf("%d found", len(found)),
		pass:     len(found) == 0 && files > 0,
	})
}
