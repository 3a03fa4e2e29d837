package storectx

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #include "shim.h"
import "C"

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Forever makes Task.Write wait as long as it takes.
const Forever time.Duration = -1

// AsyncStore is one reference to a storectx_async_store: a lock around a
// store, shared between goroutines; the goroutine whose task holds its
// write lock is the only one using the store. Release drops the reference
// (once; later calls do nothing); an AsyncStore garbage collected without
// Release is released by its finalizer. The store itself lives while any
// reference, write guard or entry refers to it.
type AsyncStore struct {
	p atomic.Pointer[C.storectx_async_store]
}

func wrapAsyncStore(p *C.storectx_async_store) *AsyncStore {
	s := &AsyncStore{}
	s.p.Store(p)
	runtime.SetFinalizer(s, (*AsyncStore).Release)
	return s
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
	p := s.p.Load()
	if p == nil {
		return nil
	}
	c := C.storectx_async_store_clone(p)
	runtime.KeepAlive(s)
	return wrapAsyncStore(c)
}

// Release is storectx_async_store_release, once.
func (s *AsyncStore) Release() {
	if p := s.p.Swap(nil); p != nil {
		C.storectx_async_store_release(p)
	}
}

// ID is storectx_async_store_id (0 once released).
func (s *AsyncStore) ID() StoreID {
	p := s.p.Load()
	if p == nil {
		return 0
	}
	id := StoreID(C.storectx_async_store_id(p))
	runtime.KeepAlive(s)
	return id
}

// TryWrite is storectx_async_store_try_write: the write lock if it is free,
// ErrBusy otherwise. It never waits, so it needs no task.
func (s *AsyncStore) TryWrite() (*WriteGuard, error) {
	p := s.p.Load()
	if p == nil {
		return nil, refuse("AsyncStore.TryWrite", ErrStaleHandle, "the AsyncStore was released")
	}
	r := C.sx_try_write(p)
	runtime.KeepAlive(s)
	if err := fromRet("AsyncStore.TryWrite", &r); err != nil {
		return nil, err
	}
	return wrapWriteGuard((*C.storectx_write_guard)(r.ptr)), nil
}

// Write is storectx_async_store_write with the task's entries on the
// thread, so a task that already holds the lock gets ErrWouldDeadlock
// instead of waiting for itself. timeout 0 tries once; Forever waits as
// long as it takes; ErrTimedOut when the lock stays taken. The wait blocks
// an OS thread (Go starts another for its other goroutines); the task is
// busy meanwhile.
func (t *Task) Write(s *AsyncStore, timeout time.Duration) (*WriteGuard, error) {
	p := s.p.Load()
	if p == nil {
		return nil, refuse("Task.Write", ErrStaleHandle, "the AsyncStore was released")
	}
	ns := ^uint64(0)
	if timeout >= 0 {
		ns = uint64(timeout)
	}
	r := C.sx_write(t.c, p, C.uint64_t(ns))
	runtime.KeepAlive(t)
	runtime.KeepAlive(s)
	if err := fromRet("Task.Write", &r); err != nil {
		return nil, err
	}
	return wrapWriteGuard((*C.storectx_write_guard)(r.ptr)), nil
}

// WriteGuard holds an async store's write lock until Release or until
// Task.InstallAsync takes it over. Released by its finalizer if dropped —
// do not count on that: the lock stays taken until the collector runs.
type WriteGuard struct {
	p atomic.Pointer[C.storectx_write_guard]
}

func wrapWriteGuard(p *C.storectx_write_guard) *WriteGuard {
	g := &WriteGuard{}
	g.p.Store(p)
	runtime.SetFinalizer(g, (*WriteGuard).Release)
	return g
}

// Store is storectx_write_guard_store: the locked store's address (0 once
// released or installed).
func (g *WriteGuard) Store() uintptr {
	p := g.p.Load()
	if p == nil {
		return 0
	}
	a := uintptr(C.storectx_write_guard_store(p))
	runtime.KeepAlive(g)
	return a
}

// Release is storectx_write_guard_release (from any goroutine), once; it
// does nothing after InstallAsync took the guard over.
func (g *WriteGuard) Release() {
	if p := g.p.Swap(nil); p != nil {
		C.storectx_write_guard_release(p)
	}
}

// InstallAsync is storectx_install_async: pushes an async entry that takes
// over g and its lock (on success only; on failure g still holds the lock).
// Uninstalling the entry, or closing the task, releases the lock.
func (t *Task) InstallAsync(g *WriteGuard) (InstallGuard, error) {
	p := g.p.Swap(nil)
	if p == nil {
		return InstallGuard{}, refuse("Task.InstallAsync", ErrStaleHandle,
			"the write guard was already released or installed")
	}
	r := C.sx_install_async(t.c, p)
	runtime.KeepAlive(t)
	if err := fromRet("Task.InstallAsync", &r); err != nil {
		g.p.Store(p)
		return InstallGuard{}, err
	}
	return InstallGuard{uint64(r.u)}, nil
}
