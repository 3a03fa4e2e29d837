// Package storectx is the Go binding of libstorectx: a stack of store
// contexts ("which store is active") that follows a goroutine from one OS
// thread to another, without runtime.LockOSThread.
//
// # The rule
//
// libstorectx keeps one stack per OS thread, and a goroutine may run on a
// different thread after every blocking operation (time.Sleep, a channel,
// a mutex, a system call) and even between two cgo calls. So a goroutine
// never leaves entries on a thread: it owns a Task, and every Task method is
// exactly one cgo call into a small C shim that
//
//  1. resumes the task's entries on the thread that runs the call
//     (storectx_resume of the task's segment),
//  2. performs the operation,
//  3. on failure, copies the status name and this thread's
//     storectx_last_error text into the call's result (the text in a
//     malloc'd copy the Go side frees: the only other cgo call, on the
//     error path only), and
//  4. suspends the task's entries again (storectx_suspend above the depth it
//     found) before returning to Go.
//
// Between two calls the thread's stack is as the call found it (empty on
// every thread Go schedules goroutines on), and status and message come
// back from the same C call that failed. A task with no entries skips the
// resume and the suspend. Each call holds runtime.LockOSThread around its
// cgo call (a few ns), so the Go code that runs after it (Call's deferred
// bookkeeping after a panic, the fallback below) runs on the same thread.
// Task.Write is the one method made of several such calls: it waits for a
// lock on the Go side, between tries (see Write).
//
// # Edges
//
//   - A panic or runtime.Goexit in a Go callback run by a guest inside
//     Task.Call unwinds through the guest's C frames without running them;
//     Call's deferred function then ends the Call on the same thread as the
//     shim would have (the entries go back into the task, locks and all) and
//     the panic or Goexit goes on, unchanged, to whoever recovers it. The
//     guest's own C cleanup does not run: a guest that must clean up recovers
//     in its callbacks and returns an error value instead.
//   - The closing suspend (step 4) needs a free segment. Each task keeps one
//     empty segment in reserve and gives it back when the segment table is
//     exhausted; a call that would push onto a task with nothing to resume
//     and no segment free is refused before it changes anything
//     (ErrExhausted). If even the reserve is taken by another thread first,
//     the entries stay on the call's thread with the goroutine locked to it
//     (the call answers ErrExhausted, saying so; other goroutines get
//     ErrBusy), until the goroutine's next call of the task, or its Close,
//     finds a free segment.
//   - A goroutine that ends while it has a task pinned (or stuck as above)
//     ends locked to its thread, and Go ends that thread: the shim then
//     suspends the task's entries back into the task (see Pin).
//   - Two tasks resident on one thread (pinned, or in Call) nest like a
//     stack: the one made resident first may not end its residency (Unpin,
//     Close: ErrOutOfOrder), push, or borrow, pause or release the other's
//     entries while the other is above it; a Call that ends under another
//     task answers ErrOutOfOrder and its entries go back into its task when
//     the other one leaves the thread.
//   - Never undo the binding's runtime.LockOSThread with an extra
//     runtime.UnlockOSThread (in a callback, after Pin): Go cannot tell the
//     binding, and the goroutine may leave the task's entries on a thread
//     that runs other goroutines.
//
// # Pinned mode and guest calls
//
// Task.Call runs a C function (the guest, or an engine entry point) with the
// task's entries installed on the thread, in the same one cgo call; C code
// it runs sees them through the C API, and Go callbacks it makes may use the
// Task (they run on the same thread). Task.Pin locks the goroutine to its
// thread (runtime.LockOSThread) and leaves the entries there until Unpin,
// for a stretch of Go code that makes many cgo calls of its own.
//
// # Store addresses
//
// The library keeps a store's address and never dereferences it. Go's cgo
// rules forbid C to keep a Go pointer after a call returns, so an address is
// a uintptr and must be one of:
//   - C memory (C.malloc, a C engine's object): uintptr(unsafe.Pointer(p));
//   - a runtime/cgo.Handle: uintptr(cgo.NewHandle(v)), turned back with
//     cgo.Handle(addr).Value(); delete the handle after the store is gone;
//   - any other nonzero number that means something to you (an index).
//
// Never a Go pointer converted to uintptr: the library would keep it and the
// garbage collector would not see it.
//
// # Ownership
//
// Close a Task when its goroutine is done: it drops the entries it still
// carries and releases their write locks (storectx_suspended_free), so no
// other goroutine waits on a task that is gone. Nothing relies on thread
// exit: Go parks its threads, and its main thread never exits (the one
// exception is the thread of a goroutine that ends pinned). A Task that is
// garbage collected without Close is closed by its finalizer, at a time you
// do not choose; a Task still pinned keeps its entries on its thread until
// the thread exits.
//
// # Why this shape
//
//   - The busy flag is taken by a compare-and-swap inside the same C call
//     that resumes the entries, so a misused Task costs no extra call and
//     two goroutines can never have its entries on two threads.
//   - A pinned task (or one inside Call) is resident: calls from its own
//     thread skip the resume and the suspend; calls from other threads are
//     refused. Go callbacks made by a guest run on the guest's thread, so
//     they can use the task that is running the guest.
//   - A call stacks the task's entries on whatever the thread holds (only a
//     pinned or calling task's entries, or a C caller's), so nesting across
//     tasks works as on one stack, but a task never pops an entry it did not
//     push: such an Uninstall is refused.
//   - Each call's result comes back by value (56 bytes, kept on the
//     goroutine's stack); the message is malloc'd only on failure. A
//     per-task or per-thread message buffer would be read after the call
//     ended, when another call may already have replaced it.
//
// A Task is for one goroutine at a time; it may be handed to another one
// (over a channel) between calls. A call made while another goroutine's call
// on the same Task is in flight, or while the Task is pinned on another
// goroutine's thread, fails with ErrBusy and changes nothing.
package storectx

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"runtime"
	"unsafe"
)

// StoreID names a store: nonzero, unique in the process, never reused.
type StoreID uint64

// NewStoreID is storectx_store_id_new.
func NewStoreID() StoreID { return StoreID(C.storectx_store_id_new()) }

// InstallGuard names the entry an Install or InstallAsync pushed. A small
// value: copy it freely; the library validates it on every use.
type InstallGuard struct{ raw uint64 }

// Borrow names a borrow of an entry (GetCurrent and friends).
type Borrow struct{ raw uint64 }

// PauseGuard names one Pause.
type PauseGuard struct{ raw uint64 }

// Raw is the handle's C value (the struct's one uint64_t field), for C code
// run by Call. Handles are validated on every use, so any value is safe to
// turn back into a handle: a wrong one is refused with a status.
func (g InstallGuard) Raw() uint64 { return g.raw }

// Raw is the handle's C value; see InstallGuard.Raw.
func (b Borrow) Raw() uint64 { return b.raw }

// Raw is the handle's C value; see InstallGuard.Raw.
func (p PauseGuard) Raw() uint64 { return p.raw }

// InstallGuardFromRaw makes a handle from its C value (e.g. one a guest
// function returned).
func InstallGuardFromRaw(raw uint64) InstallGuard { return InstallGuard{raw} }

// BorrowFromRaw makes a handle from its C value.
func BorrowFromRaw(raw uint64) Borrow { return Borrow{raw} }

// PauseGuardFromRaw makes a handle from its C value.
func PauseGuardFromRaw(raw uint64) PauseGuard { return PauseGuard{raw} }

// Task owns the entries one goroutine (or one logical task) pushed, and
// carries them from thread to thread. Create it with NewTask; Close it when
// done. See the package documentation for the rule it follows.
//
// A Task value copied from another (`h.task = *storectx.NewTask()`) is the
// same task: the C task belongs to an inner object both share, and its
// finalizer runs when neither is reachable. A nil *Task or a zero Task
// answers ErrNullArgument (Close: nil), without panicking.
type Task struct {
	in *taskState
}

// taskState owns the C task; a Task (and any copy of it) points to it.
type taskState struct {
	c C.uintptr_t // the shim's sx_task, C memory
	// A pointer field keeps taskState out of Go's tiny allocator, whose
	// blocks may never be freed (and their finalizers never run).
	_ *byte
}

// NewTask makes an empty task.
func NewTask() *Task {
	c := C.sx_task_new()
	if c == 0 {
		panic("storectx: out of memory for a Task")
	}
	in := &taskState{c: c}
	runtime.SetFinalizer(in, func(in *taskState) { C.sx_task_destroy(in.c) })
	return &Task{in: in}
}

// handle is the C task, 0 for a nil or zero Task (the shim refuses 0).
// Read before the call's LockOSThread, so nothing can panic between that
// lock and the settle that undoes it.
func (t *Task) handle() C.uintptr_t {
	if t == nil || t.in == nil {
		return 0
	}
	return t.in.c
}

// Close drops the entries the task still has and releases their write
// locks; their handles become stale. If the goroutine calling Close has the
// task pinned, Close also ends the pin (and its runtime.LockOSThread). A
// second Close does nothing. Closing a task that another goroutine is using
// or has pinned fails with ErrBusy; so does closing it inside its own Call.
func (t *Task) Close() error {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_task_close(c) })
	for i := C.uint32_t(0); i < r.n; i++ {
		runtime.UnlockOSThread()
	}
	return fromRet("Task.Close", &r)
}

// Install is storectx_install: pushes a sync entry for store (see "Store
// addresses") under id.
func (t *Task) Install(id StoreID, store uintptr) (InstallGuard, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_install(c, C.uint64_t(id), C.uintptr_t(store)) })
	return InstallGuard{uint64(r.u)}, fromRet("Task.Install", &r)
}

// Uninstall is storectx_uninstall. A task pops only its own entries: a
// guard for an entry that was on the thread before the call (a pinned or
// calling C frame's) is refused with ErrStaleHandle.
func (t *Task) Uninstall(g InstallGuard) error {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_uninstall(c, C.uint64_t(g.raw)) })
	return fromRet("Task.Uninstall", &r)
}

// Installed is storectx_install_guard_installed for the task's entries.
func (t *Task) Installed(g InstallGuard) (bool, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_installed(c, C.uint64_t(g.raw)) })
	return r.n != 0, fromRet("Task.Installed", &r)
}

// GetCurrent is storectx_get_current: the top entry must be id.
func (t *Task) GetCurrent(id StoreID) (uintptr, Borrow, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_get_current(c, C.uint64_t(id)) })
	return uintptr(r.store), Borrow{uint64(r.u)}, fromRet("Task.GetCurrent", &r)
}

// GetCurrentTransient is storectx_get_current_transient: a look, no borrow.
func (t *Task) GetCurrentTransient(id StoreID) (uintptr, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_get_current_transient(c, C.uint64_t(id)) })
	return uintptr(r.store), fromRet("Task.GetCurrentTransient", &r)
}

// GetCurrentUnborrowed is storectx_get_current_unborrowed.
func (t *Task) GetCurrentUnborrowed() (StoreID, uintptr, Borrow, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_get_current_unborrowed(c) })
	return StoreID(r.id), uintptr(r.store), Borrow{uint64(r.u)}, fromRet("Task.GetCurrentUnborrowed", &r)
}

// GetCurrentAsync is storectx_get_current_async. The AsyncStore is a new
// reference (Release it) or nil for a sync entry.
func (t *Task) GetCurrentAsync(id StoreID) (*AsyncStore, uintptr, Borrow, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_get_current_async(c, C.uint64_t(id)) })
	var s *AsyncStore
	if r.ptr != nil {
		s = wrapAsyncStore((*C.storectx_async_store)(r.ptr))
	}
	return s, uintptr(r.store), Borrow{uint64(r.u)}, fromRet("Task.GetCurrentAsync", &r)
}

// BorrowClone is storectx_borrow_clone.
func (t *Task) BorrowClone(b Borrow) (Borrow, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_borrow_clone(c, C.uint64_t(b.raw)) })
	return Borrow{uint64(r.u)}, fromRet("Task.BorrowClone", &r)
}

// ReleaseBorrow is storectx_borrow_release.
func (t *Task) ReleaseBorrow(b Borrow) error {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_borrow_release(c, C.uint64_t(b.raw)) })
	return fromRet("Task.ReleaseBorrow", &r)
}

// Pause is storectx_pause.
func (t *Task) Pause(id StoreID) (PauseGuard, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_pause(c, C.uint64_t(id)) })
	return PauseGuard{uint64(r.u)}, fromRet("Task.Pause", &r)
}

// Unpause is storectx_unpause.
func (t *Task) Unpause(p PauseGuard) error {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_unpause(c, C.uint64_t(p.raw)) })
	return fromRet("Task.Unpause", &r)
}

// IsActive is storectx_is_active with the task's entries on the thread.
func (t *Task) IsActive(id StoreID) (bool, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_inspect(c, C.uint64_t(id)) })
	return r.n&1 != 0, fromRet("Task.IsActive", &r)
}

// IsPaused is storectx_is_paused with the task's entries on the thread.
func (t *Task) IsPaused(id StoreID) (bool, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_inspect(c, C.uint64_t(id)) })
	return r.n&2 != 0, fromRet("Task.IsPaused", &r)
}

// Depth is the number of the task's own entries.
func (t *Task) Depth() (int, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_inspect(c, 0) })
	return int(r.u), fromRet("Task.Depth", &r)
}

// ActiveStore is storectx_active_store with the task's entries on the
// thread (0 when the stack is empty).
func (t *Task) ActiveStore() (StoreID, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_inspect(c, 0) })
	return StoreID(r.id), fromRet("Task.ActiveStore", &r)
}

// Describe is storectx_describe of the thread's stack with the task's
// entries on it: one line per entry, top first. For debugging.
func (t *Task) Describe() (string, error) {
	r := t.call(func(c C.uintptr_t) C.sx_ret { return C.sx_describe(c) })
	if err := fromRet("Task.Describe", &r); err != nil {
		return "", err
	}
	text := C.GoString((*C.char)(r.ptr))
	C.free(r.ptr)
	return text, nil
}

// Pin locks the calling goroutine to its OS thread (runtime.LockOSThread)
// and leaves the task's entries installed there until the matching Unpin:
// for long guest calls made through cgo calls of your own, which then find
// the entries with the C API. Pins nest. While pinned, the task's methods
// called from this goroutine skip the resume and suspend; called from
// another goroutine they fail with ErrBusy.
//
// Undo it with `defer task.Unpin()`: the deferred Unpin also runs when the
// goroutine panics or calls runtime.Goexit. A goroutine that ends pinned
// anyway ends locked to its thread, and Go then ends that thread: when it
// does, the binding suspends the task's entries back into the task, which
// is usable again from any goroutine (Close frees them). Go never ends the
// process's main thread (it parks it for good instead), so Pin keeps a task
// off that thread: a goroutine running there is moved to another thread
// first (a helper goroutine occupies the main thread meanwhile; up to 10
// tries: if the goroutine is still there, e.g. locked there by its own
// LockOSThread, it pins there, and a task left pinned there stays busy for
// good).
func (t *Task) Pin() error {
	c := t.handle()
	runtime.LockOSThread()
	r := C.sx_pin(c, 0) // on success the shim keeps this LockOSThread as the pin's
	// Not on the process's main thread if it can be helped: Go wedges that
	// thread, instead of ending it, when a goroutine exits locked to it, so
	// a task left pinned there would never come back (see Pin's comment).
	for try := 1; r.n == 1; try++ {
		runtime.UnlockOSThread()
		release := occupyThisThread()
		runtime.LockOSThread()
		r = C.sx_pin(c, C.int(boolInt(try >= 10)))
		close(release)
	}
	settle(&r)
	runtime.KeepAlive(t)
	return fromRet("Task.Pin", &r)
}

// Unpin undoes one Pin; the last one suspends the entries back into the
// task and unlocks the thread.
func (t *Task) Unpin() error {
	c := t.handle()
	runtime.LockOSThread()
	r := C.sx_unpin(c) // on success also undoes the pin's LockOSThread
	settle(&r)
	runtime.KeepAlive(t)
	return fromRet("Task.Unpin", &r)
}

// Call runs the C function fn(arg) — declared int64_t fn(uintptr_t arg) —
// with the task's entries installed on the thread, all in one cgo call, and
// answers what fn returned. Entries fn leaves on the stack become the
// task's. Go callbacks fn makes run on the same thread and may use the task
// (its calls skip the resume and suspend); other goroutines get ErrBusy
// until Call returns. fn is a C function pointer, e.g.
// unsafe.Pointer(C.my_guest) in your own cgo package; arg follows the store
// address rules (C memory, a cgo.Handle, a number).
func (t *Task) Call(fn unsafe.Pointer, arg uintptr) (int64, error) {
	c := t.handle()
	runtime.LockOSThread() // the deferred bookkeeping below must run on this thread
	returned := false
	defer func() {
		if returned {
			return
		}
		// A Go callback of the guest panicked or called runtime.Goexit:
		// Go unwound the guest's and the shim's C frames without running
		// them. End this Call frame as sx_call would have (the entries go
		// back into the task, or stay resident under an enclosing Call or
		// Pin), then let the panic or Goexit go on.
		r := C.sx_call_unwound(c)
		settle(&r)
		C.free(unsafe.Pointer(r.msg))
		runtime.KeepAlive(t)
	}()
	r := C.sx_call(c, C.sx_guest_fn(fn), C.uintptr_t(arg))
	returned = true
	settle(&r)
	runtime.KeepAlive(t)
	return int64(r.u), fromRet("Task.Call", &r)
}

// settle undoes the runtime.LockOSThread every Task call makes before its
// cgo call, as many times as the shim says: once normally, not at all when
// the task keeps the goroutine on its thread (Pin; a task whose entries
// could not be suspended), more when the call ended pins (Unpin, Close).
// The lock around the call is what lets the shim keep a task's entries on
// the thread that ran the call, and lets Call's deferred bookkeeping run on
// that thread after a panic.
// occupyThisThread moves the calling goroutine (not locked to its thread)
// off the thread it runs on, in most cases: a helper goroutine takes the
// thread, usually this one, with runtime.LockOSThread and blocks, so Go
// runs the caller on another thread meanwhile. Close the channel to let the
// helper unlock and end.
func occupyThisThread() chan struct{} {
	taken, release := make(chan struct{}), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		close(taken)
		<-release
		runtime.UnlockOSThread() // never end locked: that would end the thread
	}()
	<-taken
	return release
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// call makes one shim call for the task on this goroutine's OS thread:
// locks the thread first (the shim keeps the lock as a pin's, or says in
// r.unlock how many locks to give back: settle) and keeps t reachable until
// the call returned (the finalizer of its state must not destroy the C task
// under the call).
func (t *Task) call(f func(c C.uintptr_t) C.sx_ret) C.sx_ret {
	c := t.handle()
	runtime.LockOSThread()
	r := f(c)
	settle(&r)
	runtime.KeepAlive(t)
	return r
}

func settle(r *C.sx_ret) {
	for i := C.uint32_t(0); i < r.unlock; i++ {
		runtime.UnlockOSThread()
	}
}

// ThreadDepth is storectx_depth of whatever OS thread runs this call: 0
// except on a thread where a Task is pinned or inside Call. A diagnostic
// for tests and for finding entries left behind.
func ThreadDepth() int { return int(C.storectx_depth()) }

// Version is storectx_version.
func Version() string { return C.GoString(C.storectx_version()) }

// testingStealSpare makes the next closing suspend that gives its spare
// segment back lose it to another allocation before its retry (on), or
// frees what was taken (off): the shim's test hook, exported to the tests
// by export_test.go.
func testingStealSpare(on bool) { C.sx_testing_steal_spare(C.int(boolInt(on))) }
