//go:build storectx_external

// With -tags storectx_external the library comes from CGO_LDFLAGS alone (an
// installed libstorectx, or another build of the archive); see link.go.

package storectx
