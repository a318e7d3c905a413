// Package crd embeds the generated CustomResourceDefinitions of bases/
// (written by `make manifests`, checked by `make verify`), so that tools
// can validate objects offline exactly as the API server serving them would.
package crd

import "embed"

// Bases holds bases/*.yaml, one CRD per file.
//
//go:embed bases/*.yaml
var Bases embed.FS
