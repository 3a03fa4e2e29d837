// Package guest holds C guest functions for the binding's tests and the
// raw-cgo baseline of its benchmark (cgo is not allowed in _test.go files).
package guest

// #cgo CFLAGS: -I${SRCDIR}/../../../../include
// #include <stdlib.h>
// #include "guest.h"
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// Function pointers for storectx.Task.Call.
var (
	Probe        = unsafe.Pointer(C.guest_probe)
	SleepProbe   = unsafe.Pointer(C.guest_sleep_probe)
	Callback     = unsafe.Pointer(C.guest_callback)
	InstallLeave = unsafe.Pointer(C.guest_install_leave)
	PopTop       = unsafe.Pointer(C.guest_pop_top)
	Depth        = unsafe.Pointer(C.guest_depth)
	// Fill fills the segment table (at most arg segments) and leaves them
	// live until Unfill: the task's closing suspend then finds none free.
	Fill = unsafe.Pointer(C.guest_fill)
)

// ProbeArg is a C-allocated argument for Probe and SleepProbe.
type ProbeArg struct{ p *C.guest_probe_arg }

// NewProbeArg allocates the argument in C memory (C keeps it during Call).
func NewProbeArg(id uint64, want uintptr) ProbeArg {
	p := (*C.guest_probe_arg)(C.malloc(C.sizeof_guest_probe_arg))
	p.id = C.uint64_t(id)
	p.want = C.uintptr_t(want)
	return ProbeArg{p}
}

// Addr is the argument's address, for Call.
func (a ProbeArg) Addr() uintptr { return uintptr(unsafe.Pointer(a.p)) }

// Free releases the argument.
func (a ProbeArg) Free() { C.free(unsafe.Pointer(a.p)) }

//export goGuestCallback
func goGuestCallback(arg C.uintptr_t) C.int64_t {
	return C.int64_t(cgo.Handle(arg).Value().(func() int64)())
}

// The raw C API, one cgo call each, for the LockOSThread baseline: the
// caller keeps its goroutine on one thread and calls the library directly.

// RawInstall is storectx_install.
func RawInstall(id uint64, store uintptr) (uint64, int32) {
	r := C.raw_install(C.uint64_t(id), C.uintptr_t(store))
	return uint64(r.u), int32(r.status)
}

// RawUninstall is storectx_uninstall.
func RawUninstall(g uint64) int32 { return int32(C.raw_uninstall(C.uint64_t(g))) }

// RawGetCurrentTransient is storectx_get_current_transient.
func RawGetCurrentTransient(id uint64) (uintptr, int32) {
	r := C.raw_get_current_transient(C.uint64_t(id))
	return uintptr(r.u), int32(r.status)
}

// SetTableLimit lowers the live segments and write guards the process may
// hold (storectx_testing_set_table_limit, the `testing` feature); false when
// the library was built without it.
func SetTableLimit(limit uint) bool { return C.guest_set_table_limit(C.size_t(limit)) != 0 }

// FillSegments suspends empty segments until the table is exhausted (at
// most max), and answers how many; Unfill frees them.
func FillSegments(max uint) uint { return uint(C.guest_fill_segments(C.size_t(max))) }

// Unfill frees the segments FillSegments and Fill took.
func Unfill() { C.guest_unfill() }

// WatchThread counts the exit of the calling OS thread in WatchedExits
// (false where the platform lacks the hook).
func WatchThread() bool { return C.guest_watch_thread() != 0 }

// WatchedExits is the number of watched threads that exited.
func WatchedExits() uint { return uint(C.guest_watched_exits_count()) }
