// Set-up and checks shared by the tests: an async store over a new
// embedder store, a task holding a store's write lock as an async entry,
// and a check that a store's lock is free.
package storectx_test

import (
	"testing"
	"time"

	"example.invalid/storectx"
)

// newAsyncStore answers a new AsyncStore over a new embedder store, with
// that store's id and C address (newStore's). The AsyncStore is released
// when t ends (t.Cleanup, before newStore's handle is deleted); a test may
// release it sooner: Release is idempotent, only the first call releases
// the C reference.
func newAsyncStore(t testing.TB) (*storectx.AsyncStore, storectx.StoreID, uintptr) {
	t.Helper()
	id, h := newStore(t)
	s, err := storectx.NewAsyncStore(id, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Release)
	return s, id, h
}

// installWrite takes s's write lock through task (Task.Write with timeout:
// 0 tries once, storectx.Forever waits) and installs it as an async entry
// on top of the task's entries; it fails t on either error. Call it only
// from the test's own goroutine (it calls t.Fatal).
func installWrite(t testing.TB, task *storectx.Task, s *storectx.AsyncStore, timeout time.Duration) storectx.InstallGuard {
	t.Helper()
	w, err := task.Write(s, timeout)
	if err != nil {
		t.Fatal(err)
	}
	g, err := task.InstallAsync(w)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// expectLockFree asserts that s's write lock is free (TryWrite succeeds;
// the guard is released at once), failing t with what and TryWrite's error
// otherwise.
func expectLockFree(t testing.TB, s *storectx.AsyncStore, what string) {
	t.Helper()
	w, err := s.TryWrite()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	w.Release()
}
