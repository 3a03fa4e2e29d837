//go:build !storectx_external

package storectx

// Default linking: the static archive `cargo build --release` leaves in the
// checkout, found relative to this directory, so `go test` works from a
// checkout with nothing installed. Static, because the shared library's
// versioned SONAME (libstorectx.so.0.2) is set only by the CMake build, and because a
// Go binary that carries the library needs no rpath or LD_LIBRARY_PATH.
// The system libraries are those `rustc --print native-static-libs` lists.
//
// Build with -tags storectx_external to give the flags yourself instead,
// e.g. CGO_LDFLAGS="<libdir>/libstorectx.a -lpthread -ldl -lm" (the static
// archive) or the shared library with an -Wl,-rpath (see the README).

// #cgo LDFLAGS: ${SRCDIR}/../../target/release/libstorectx.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
import "C"
