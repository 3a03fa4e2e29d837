package storectx

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Status is a storectx_status code. The constants below take their values
// from the C header, so they cannot drift from it. A Status is also an
// error value to test with errors.Is:
//
//	if errors.Is(err, storectx.ErrPaused) { ... }
type Status int32

// The status codes of include/storectx.h.
const (
	OK                 Status = C.STORECTX_OK
	ErrNullArgument    Status = C.STORECTX_ERR_NULL_ARGUMENT
	ErrInvalidArgument Status = C.STORECTX_ERR_INVALID_ARGUMENT
	ErrNoContext       Status = C.STORECTX_ERR_NO_CONTEXT
	ErrNotInstalled    Status = C.STORECTX_ERR_NOT_INSTALLED
	ErrPaused          Status = C.STORECTX_ERR_PAUSED
	ErrAddressMismatch Status = C.STORECTX_ERR_ADDRESS_MISMATCH
	ErrOutOfOrder      Status = C.STORECTX_ERR_OUT_OF_ORDER
	ErrStaleHandle     Status = C.STORECTX_ERR_STALE_HANDLE
	ErrStillBorrowed   Status = C.STORECTX_ERR_STILL_BORROWED
	ErrNotBorrowed     Status = C.STORECTX_ERR_NOT_BORROWED
	ErrBorrowed        Status = C.STORECTX_ERR_BORROWED
	ErrNotSync         Status = C.STORECTX_ERR_NOT_SYNC
	ErrBusy            Status = C.STORECTX_ERR_BUSY
	ErrTimedOut        Status = C.STORECTX_ERR_TIMED_OUT
	ErrWouldDeadlock   Status = C.STORECTX_ERR_WOULD_DEADLOCK
	ErrAlreadyOnStack  Status = C.STORECTX_ERR_ALREADY_ON_STACK
	ErrPanic           Status = C.STORECTX_ERR_PANIC
	ErrExhausted       Status = C.STORECTX_ERR_EXHAUSTED
)

// String is storectx_status_str: the name and meaning, e.g.
// "STORECTX_ERR_PAUSED: the store is on this thread's stack but not on top".
func (s Status) String() string {
	return C.GoString(C.storectx_status_str(C.int32_t(s)))
}

// Name is the status's C name alone, e.g. "STORECTX_ERR_PAUSED".
func (s Status) Name() string {
	name, _, _ := strings.Cut(s.String(), ":")
	return name
}

func (s Status) Error() string { return s.String() }

// Error is what a failed call returns: the status, its name and meaning
// (storectx_status_str), and the message — what the call expected and what
// it found. Status, name and message all come from the one C call that
// failed, on the thread that ran it: the binding never reads
// storectx_last_error in a later call, which could run on another thread.
//
// The binding refuses some calls by itself, with its own message and one of
// the library's codes:
//   - ErrBusy: the Task is in use by another goroutine, or pinned (Pin or
//     Call) on another goroutine's thread;
//   - ErrStaleHandle: the Task is closed, or a WriteGuard was already
//     released or installed, or an AsyncStore released;
//   - ErrInvalidArgument: Unpin of a task that is not pinned.
type Error struct {
	Op      string // the binding's method, e.g. "Task.Uninstall"
	Status  Status
	Name    string // e.g. "STORECTX_ERR_PAUSED"
	Meaning string // e.g. "the store is on this thread's stack but not on top"
	Message string // e.g. "store 7 is paused at depth 1; top is store 9 at depth 2"
}

func (e *Error) Error() string {
	return fmt.Sprintf("storectx: %s: %s (%s)", e.Op, e.Message, e.Name)
}

// Is reports whether target is this error's Status.
func (e *Error) Is(target error) bool {
	s, ok := target.(Status)
	return ok && s == e.Status
}

// fromRet turns a failed shim call into an *Error (nil when it succeeded)
// and frees the message the shim allocated. r does not escape: every call's
// result stays on the goroutine's stack.
func fromRet(op string, r *C.sx_ret) error {
	if r.status == C.STORECTX_OK {
		return nil
	}
	message := "(no memory for the message)"
	if r.msg != nil {
		message = C.GoString(r.msg)
		C.free(unsafe.Pointer(r.msg))
	}
	name, meaning, _ := strings.Cut(C.GoString(r.name), ": ")
	return &Error{
		Op:      op,
		Status:  Status(r.status),
		Name:    name,
		Meaning: meaning,
		Message: message,
	}
}

// refuse is an error the Go side decides alone (no C call was made).
func refuse(op string, s Status, message string) error {
	name, meaning, _ := strings.Cut(s.String(), ": ")
	return &Error{Op: op, Status: s, Name: name, Meaning: meaning, Message: message}
}
