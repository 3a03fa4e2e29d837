package storectx

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// Forever makes Task.Write wait as long as it takes.
const Forever time.Duration = -1

// useCount lets a Go object that owns one C reference be used and released
// from several goroutines: every method holds a use for the duration of its
// C call, and the C reference is released once, by whoever ends the last
// use after Release (Release itself when nothing is in use). Without it a
// method could load the pointer, another goroutine release it, and the
// method's C call use freed memory.
//
// State: bit 0 released, bit 1 taken (InstallAsync is handing the guard to
// C), the rest the number of uses in flight, in units of 4.
type useCount struct{ state atomic.Int64 }

const (
	useReleased = 1
	useTaken    = 2
	useOne      = 4
)

// acquire starts a use; false once released or taken.
func (u *useCount) acquire() bool {
	for {
		s := u.state.Load()
		if s&(useReleased|useTaken) != 0 {
			return false
		}
		if u.state.CompareAndSwap(s, s+useOne) {
			return true
		}
	}
}

// done ends a use; true when the caller must release the C reference (it
// was released meanwhile and this was the last use).
func (u *useCount) done() bool { return u.state.Add(-useOne) == useReleased }

// release marks it released; true when the caller must release the C
// reference now (nothing in use, not taken).
func (u *useCount) release() bool {
	for {
		s := u.state.Load()
		if s&useReleased != 0 {
			return false
		}
		if u.state.CompareAndSwap(s, s|useReleased) {
			return s == 0
		}
	}
}

// released reports whether Release was called.
func (u *useCount) released() bool { return u.state.Load()&useReleased != 0 }

// take claims the reference for a C call that consumes it, once no use is
// in flight (uses are single short C calls); false once released or taken.
func (u *useCount) take() bool {
	for {
		s := u.state.Load()
		if s&(useReleased|useTaken) != 0 {
			return false
		}
		if s == 0 && u.state.CompareAndSwap(0, useTaken) {
			return true
		}
		runtime.Gosched()
	}
}

// untake gives the reference back after the consuming call failed; true
// when the caller must release it (Release was called meanwhile).
func (u *useCount) untake() bool {
	for {
		s := u.state.Load()
		if u.state.CompareAndSwap(s, s&^useTaken) {
			return s&^useTaken == useReleased
		}
	}
}

// AsyncStore is one reference to a storectx_async_store: a lock around a
// store, shared between goroutines; the goroutine whose task holds its
// write lock is the only one using the store. Release drops the reference
// (once; later calls do nothing); an AsyncStore garbage collected without
// Release is released by its finalizer. The store itself lives while any
// reference, write guard or entry refers to it.
//
// An AsyncStore may be used from any number of goroutines at once, also
// while one of them releases it: a method that started before the Release
// keeps the reference until its C call returns (the release happens then),
// a method that starts after it is refused with ErrStaleHandle, and a
// Task.Write waiting for the lock gives up with ErrStaleHandle. A nil
// *AsyncStore (what Clone of a released one answers) answers as a
// released one.
type AsyncStore struct {
	p   *C.storectx_async_store // C memory; set once, before the object is shared
	use useCount
}

func wrapAsyncStore(p *C.storectx_async_store) *AsyncStore {
	s := &AsyncStore{p: p}
	runtime.SetFinalizer(s, (*AsyncStore).Release)
	return s
}

// enter starts a use of the C reference: nil once released (and for a nil
// AsyncStore, e.g. what Clone of a released one answers).
func (s *AsyncStore) enter() *C.storectx_async_store {
	if s == nil || s.p == nil || !s.use.acquire() {
		return nil
	}
	return s.p
}

// leave ends a use; the last use after a Release releases the reference.
func (s *AsyncStore) leave() {
	if s.use.done() {
		C.storectx_async_store_release(s.p)
	}
	runtime.KeepAlive(s)
}

// NewAsyncStore is storectx_async_store_new; store follows the rules of
// "Store addresses" in the package documentation.
func NewAsyncStore(id StoreID, store uintptr) (*AsyncStore, error) {
	r := C.sx_async_store_new(C.uint64_t(id), C.uintptr_t(store))
	if err := fromRet("NewAsyncStore", &r); err != nil {
		return nil, err
	}
	return wrapAsyncStore((*C.storectx_async_store)(r.ptr)), nil
}

// Clone is storectx_async_store_clone: another reference to the same store.
// Nil for a released AsyncStore.
func (s *AsyncStore) Clone() *AsyncStore {
	p := s.enter()
	if p == nil {
		return nil
	}
	c := C.storectx_async_store_clone(p)
	s.leave()
	return wrapAsyncStore(c)
}

// Release is storectx_async_store_release, once; if another goroutine's
// call is using the reference, the release happens when that call returns.
func (s *AsyncStore) Release() {
	if s != nil && s.p != nil && s.use.release() {
		C.storectx_async_store_release(s.p)
	}
}

// ID is storectx_async_store_id (0 once released).
func (s *AsyncStore) ID() StoreID {
	p := s.enter()
	if p == nil {
		return 0
	}
	id := StoreID(C.storectx_async_store_id(p))
	s.leave()
	return id
}

// TryWrite is storectx_async_store_try_write: the write lock if it is free,
// ErrBusy otherwise. It never waits, so it needs no task.
func (s *AsyncStore) TryWrite() (*WriteGuard, error) {
	p := s.enter()
	if p == nil {
		return nil, refuse("AsyncStore.TryWrite", ErrStaleHandle, "the AsyncStore was released")
	}
	r := C.sx_try_write(p)
	s.leave()
	if err := fromRet("AsyncStore.TryWrite", &r); err != nil {
		return nil, err
	}
	return wrapWriteGuard((*C.storectx_write_guard)(r.ptr)), nil
}

// Write is storectx_async_store_write with the task's entries on the
// thread, so a task that already holds the lock gets ErrWouldDeadlock
// instead of waiting for itself. timeout 0 tries once, and so does any
// other negative timeout (a deadline already passed: time.Until(d));
// Forever waits as long as it takes; ErrTimedOut when the lock stays taken.
//
// The wait is on the Go side: each try is one short cgo call that never
// blocks (storectx_async_store_write with timeout 0, the task's entries on
// the thread), and between tries the goroutine yields (runtime.Gosched),
// then sleeps with a back-off from 5 µs to 500 µs (never past the
// deadline). So a waiting Write never holds an OS thread or the
// goroutine's P: the goroutine holding the lock runs and releases it even
// with GOMAXPROCS=1. A try is made after the deadline has passed before
// ErrTimedOut is answered. The wait is not fair: a TryWrite or a Write
// that tries at the right moment may take the lock before a goroutine that
// has waited longer. The task is free between tries (its entries are in
// it), and a Release of s on another goroutine ends the wait with
// ErrStaleHandle.
func (t *Task) Write(s *AsyncStore, timeout time.Duration) (*WriteGuard, error) {
	p := s.enter()
	if p == nil {
		return nil, refuse("Task.Write", ErrStaleHandle, "the AsyncStore was released")
	}
	defer s.leave()
	c := t.handle()
	if timeout < 0 && timeout != Forever {
		timeout = 0 // a deadline already passed (time.Until): one try
	}
	var start time.Time
	if timeout > 0 {
		start = time.Now()
	}
	sleep := 5 * time.Microsecond
	for try := 0; ; try++ {
		runtime.LockOSThread()
		r := C.sx_write(c, p, 0)
		settle(&r)
		runtime.KeepAlive(t)
		if r.status == C.STORECTX_OK {
			return wrapWriteGuard((*C.storectx_write_guard)(r.ptr)), nil
		}
		if r.status != C.STORECTX_ERR_TIMED_OUT || timeout == 0 {
			return nil, fromRet("Task.Write", &r)
		}
		C.free(unsafe.Pointer(r.msg))
		var left time.Duration
		if timeout > 0 {
			if left = timeout - time.Since(start); left <= 0 {
				return nil, refuse("Task.Write", ErrTimedOut, fmt.Sprintf(
					"the write lock of store %d stayed taken for the whole timeout, %v (%d tries)",
					C.storectx_async_store_id(p), timeout, try+1))
			}
		}
		if s.use.released() {
			return nil, refuse("Task.Write", ErrStaleHandle, fmt.Sprintf(
				"the AsyncStore of store %d was released (by another goroutine) while Write waited for its lock",
				C.storectx_async_store_id(p)))
		}
		if try < 4 {
			runtime.Gosched()
			continue
		}
		d := sleep
		if timeout > 0 && d > left {
			d = left
		}
		time.Sleep(d)
		if sleep < 500*time.Microsecond {
			sleep *= 2
		}
	}
}

// WriteGuard holds an async store's write lock until Release or until
// Task.InstallAsync takes it over. Released by its finalizer if dropped —
// do not count on that: the lock stays taken until the collector runs.
// Its methods may be called from any goroutine, also concurrently with
// Release (see AsyncStore). A nil *WriteGuard answers as a released one.
type WriteGuard struct {
	p   *C.storectx_write_guard // C memory; set once
	use useCount
}

func wrapWriteGuard(p *C.storectx_write_guard) *WriteGuard {
	g := &WriteGuard{p: p}
	runtime.SetFinalizer(g, (*WriteGuard).Release)
	return g
}

// Store is storectx_write_guard_store: the locked store's address (0 once
// released or installed).
func (g *WriteGuard) Store() uintptr {
	if g == nil || g.p == nil || !g.use.acquire() {
		return 0
	}
	a := uintptr(C.storectx_write_guard_store(g.p))
	if g.use.done() {
		C.storectx_write_guard_release(g.p)
	}
	runtime.KeepAlive(g)
	return a
}

// Release is storectx_write_guard_release (from any goroutine), once; it
// does nothing after InstallAsync took the guard over.
func (g *WriteGuard) Release() {
	if g != nil && g.p != nil && g.use.release() {
		C.storectx_write_guard_release(g.p)
	}
}

// InstallAsync is storectx_install_async: pushes an async entry that takes
// over g and its lock (on success only; on failure g still holds the lock).
// Uninstalling the entry, or closing the task, releases the lock.
func (t *Task) InstallAsync(g *WriteGuard) (InstallGuard, error) {
	c := t.handle()
	if g == nil || g.p == nil || !g.use.take() {
		return InstallGuard{}, refuse("Task.InstallAsync", ErrStaleHandle,
			"the write guard was already released or installed")
	}
	runtime.LockOSThread()
	r := C.sx_install_async(c, g.p)
	settle(&r)
	runtime.KeepAlive(t)
	if r.u == 0 { // not installed: the guard is still g's
		if g.use.untake() {
			C.storectx_write_guard_release(g.p)
		}
	}
	runtime.KeepAlive(g)
	return InstallGuard{uint64(r.u)}, fromRet("Task.InstallAsync", &r)
}
