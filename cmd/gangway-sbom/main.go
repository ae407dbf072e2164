// Command gangway-sbom writes an SPDX 2.3 JSON software bill of materials for Go binaries,
// from the module graph each binary records (what `go version -m` prints): the binaries
// themselves, every module linked into them with its version, and the Go standard library.
// It reads only the files it is given, so the same binaries and flags give the same bytes.
//
//	gangway-sbom -name gangway -version v0.1.0 -created 1767225600 BIN... > gangway.spdx.json
package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gangway-sbom", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "gangway", "the document's name")
	ver := fs.String("version", "", "the release's version, for the main module (git describe)")
	created := fs.String("created", os.Getenv("SOURCE_DATE_EPOCH"), "creation time in Unix seconds (the commit time); default $SOURCE_DATE_EPOCH")
	out := fs.String("o", "", "write here instead of standard output")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 4
	}
	if *ver == "" || *created == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "gangway-sbom: -version, -created (or $SOURCE_DATE_EPOCH) and at least one binary are required")
		return 4
	}
	secs, err := strconv.ParseInt(*created, 10, 64)
	if err != nil {
		fmt.Fprintf(stderr, "gangway-sbom: -created %q: want Unix seconds\n", *created)
		return 4
	}
	doc, err := build(*name, *ver, time.Unix(secs, 0).UTC(), fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "gangway-sbom: %v\n", err)
		return 1
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "gangway-sbom: %v\n", err)
		return 1
	}
	data = append(data, '\n')
	if *out == "" {
		_, err = stdout.Write(data)
	} else {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gangway-sbom: %v\n", err)
		return 1
	}
	return 0
}

// The subset of SPDX 2.3 (https://spdx.github.io/spdx-spec/v2.3/) that a Go binary's build
// information can fill truthfully; what it cannot know (licenses, download checksums) is
// left out, which the specification allows, rather than guessed.
type document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      creationInfo   `json:"creationInfo"`
	Packages          []pkg          `json:"packages"`
	Relationships     []relationship `json:"relationships"`
}

type creationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type pkg struct {
	Name             string        `json:"name"`
	SPDXID           string        `json:"SPDXID"`
	VersionInfo      string        `json:"versionInfo,omitempty"`
	DownloadLocation string        `json:"downloadLocation"`
	FilesAnalyzed    bool          `json:"filesAnalyzed"`
	Checksums        []checksum    `json:"checksums,omitempty"`
	PrimaryPurpose   string        `json:"primaryPackagePurpose,omitempty"`
	Comment          string        `json:"comment,omitempty"`
	ExternalRefs     []externalRef `json:"externalRefs,omitempty"`
}

type checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type externalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type relationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// build reads each binary's build information and makes the document: one APPLICATION
// package per binary, one LIBRARY package per module version (shared by the binaries that
// link it), and the standard library of each Go version used.
func build(name, ver string, created time.Time, bins []string) (*document, error) {
	doc := &document{
		SPDXVersion:  "SPDX-2.3",
		DataLicense:  "CC0-1.0",
		SPDXID:       "SPDXRef-DOCUMENT",
		Name:         name + "-" + ver,
		CreationInfo: creationInfo{Created: created.Format(time.RFC3339), Creators: []string{"Tool: gangway-sbom"}},
	}
	libs := map[string]pkg{}
	var rels []relationship
	// The namespace must be unique per document: derive it from what the document says.
	ns := sha256.New()
	fmt.Fprintln(ns, name, ver, created.Unix())
	for _, bin := range bins {
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bin, err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintln(ns, filepath.Base(bin), hex.EncodeToString(sum[:]))
		app := pkg{
			Name:             filepath.Base(bin),
			SPDXID:           spdxID("Application", filepath.Base(bin)),
			VersionInfo:      ver,
			DownloadLocation: "NOASSERTION",
			Checksums:        []checksum{{"SHA256", hex.EncodeToString(sum[:])}},
			PrimaryPurpose:   "APPLICATION",
			Comment:          "main package " + info.Path + ", built with " + info.GoVersion + settings(info),
			ExternalRefs:     []externalRef{purl(info.Main.Path, ver)},
		}
		doc.Packages = append(doc.Packages, app)
		rels = append(rels, relationship{doc.SPDXID, "DESCRIBES", app.SPDXID})

		std := library("stdlib", info.GoVersion)
		libs[std.SPDXID] = std
		rels = append(rels, relationship{app.SPDXID, "DEPENDS_ON", std.SPDXID})
		for _, m := range info.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			lib := library(m.Path, m.Version)
			if other, ok := libs[lib.SPDXID]; ok && other.Name != lib.Name {
				// Two paths that differ only in characters an identifier cannot hold.
				h := sha256.Sum256([]byte(m.Path))
				lib.SPDXID += "-" + hex.EncodeToString(h[:4])
			}
			libs[lib.SPDXID] = lib
			rels = append(rels, relationship{app.SPDXID, "DEPENDS_ON", lib.SPDXID})
		}
	}
	ids := make([]string, 0, len(libs))
	for id := range libs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		doc.Packages = append(doc.Packages, libs[id])
	}
	doc.Relationships = rels
	doc.DocumentNamespace = "https://github.com/gangway-ecs/gangway/spdx/" + name + "-" + ver + "-" + hex.EncodeToString(ns.Sum(nil))[:16]
	return doc, nil
}

func library(path, version string) pkg {
	return pkg{
		Name:             path,
		SPDXID:           spdxID("Module", path+"-"+version),
		VersionInfo:      version,
		DownloadLocation: "NOASSERTION",
		PrimaryPurpose:   "LIBRARY",
		ExternalRefs:     []externalRef{purl(path, version)},
	}
}

// purl is the package URL of a Go module (https://github.com/package-url/purl-spec).
func purl(path, version string) externalRef {
	return externalRef{"PACKAGE-MANAGER", "purl", "pkg:golang/" + path + "@" + version}
}

// settings lists the build settings that change the generated code, as `go version -m`
// prints them.
func settings(info *debug.BuildInfo) string {
	var s []string
	for _, kv := range info.Settings {
		switch kv.Key {
		case "-ldflags", "-trimpath", "CGO_ENABLED", "GOOS", "GOARCH", "GOAMD64", "GOARM64":
			s = append(s, kv.Key+"="+kv.Value)
		}
	}
	if len(s) == 0 {
		return ""
	}
	return " (" + strings.Join(s, " ") + ")"
}

// spdxID makes an SPDX identifier: "SPDXRef-" then letters, digits, '.' and '-' only.
func spdxID(kind, s string) string {
	b := []byte("SPDXRef-" + kind + "-")
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
			b = append(b, c)
		} else {
			b = append(b, '-')
		}
	}
	return string(b)
}
