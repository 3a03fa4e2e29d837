//go:build storectx_external

package storectx

// With -tags storectx_external the library comes from CGO_LDFLAGS (an
// installed libstorectx, or another build of the archive); see link.go.
import "C"
