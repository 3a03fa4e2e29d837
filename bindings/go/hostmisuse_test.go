// Ways real Go hosts misuse the binding: a deadline already passed
// (time.Until gives a negative timeout), a Task copied by value, a method
// called on a nil *Task and recovered.
package storectx_test

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"example.invalid/storectx"
	"example.invalid/storectx/internal/guest"
)

// time.Until(deadline) is negative once the deadline passed: Write must
// answer at once (one try), as context deadlines do, not wait for ever.
// Only Forever waits without end.
func TestWriteWithAPassedDeadlineDoesNotWaitForEver(t *testing.T) {
	id, h := newStore(t)
	s, err := storectx.NewAsyncStore(id, h)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	held, err := s.TryWrite()
	if err != nil {
		t.Fatal(err)
	}
	task := storectx.NewTask()
	defer task.Close()
	for _, timeout := range []time.Duration{-2, -time.Second, time.Until(time.Now().Add(-time.Hour))} {
		done := make(chan error, 1)
		go func() { _, err := task.Write(s, timeout); done <- err }()
		select {
		case err := <-done:
			expectStatus(t, err, storectx.ErrTimedOut, "Write with a negative timeout")
		case <-time.After(5 * time.Second):
			held.Release() // lets the stuck Write end
			<-done
			t.Fatalf("Write(%v) was still waiting after 5 s", timeout)
		}
	}
	held.Release()
	// The lock free: a negative timeout takes it like timeout 0.
	w, err := task.Write(s, -time.Second)
	if err != nil {
		t.Fatalf("Write(-1s) of a free store: %v", err)
	}
	w.Release()
}

// A Task stored by value (`h.task = *storectx.NewTask()`) outlives the
// *Task it was copied from: the copy must keep working, not use the C
// task the original's finalizer freed.
func TestACopiedTaskOutlivesItsOriginal(t *testing.T) {
	var copies []storectx.Task
	ids := make([]storectx.StoreID, 64)
	for i := range ids {
		task := storectx.NewTask()
		ids[i] = storectx.NewStoreID()
		if _, err := task.Install(ids[i], 0x1000+uintptr(i)); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, *task) //nolint:govet // the misuse under test
	}
	for i := 0; i < 5; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	// New tasks (C memory of the same size) reuse what was freed, if it was.
	fresh := make([]*storectx.Task, 64)
	for i := range fresh {
		fresh[i] = storectx.NewTask()
	}
	for i := range copies {
		c := &copies[i]
		n, err := c.Depth()
		if err != nil || n != 1 {
			t.Fatalf("copy %d after its original was collected: depth %d (%v), want 1", i, n, err)
		}
		if top, err := c.ActiveStore(); top != ids[i] || err != nil {
			t.Fatalf("copy %d: top store %d (%v), want %d", i, top, err, ids[i])
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fresh {
		f.Close()
	}
}

// A method called on a nil *Task (or a zero Task) is misuse: it must get
// an error, and the goroutine must not be left locked to its OS thread
// (before the fix the nil dereference panicked between the call's
// LockOSThread and its UnlockOSThread; a host that recovered kept the
// lock). Go shows a leftover lock only one way: a goroutine that ends
// locked takes its thread with it.
func TestANilTaskIsRefusedAndLeavesNoThreadLocked(t *testing.T) {
	id, h := newStore(t)
	s, err := storectx.NewAsyncStore(id, h)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	var nilTask *storectx.Task
	var zero storectx.Task
	calls := []func() error{
		func() error { _, err := nilTask.Install(1, 1); return err },
		func() error { _, err := nilTask.Depth(); return err },
		func() error { return nilTask.Pin() },
		func() error { return nilTask.Unpin() },
		func() error { _, err := nilTask.Write(s, 0); return err },
		func() error { _, err := zero.Install(1, 1); return err },
		func() error { _, err := zero.Call(guest.Depth, 0); return err },
	}
	for i, call := range calls {
		before := guest.WatchedExits()
		done := make(chan bool, 1)
		var err error
		go func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("call %d panicked: %v", i, r)
				}
				done <- guest.WatchThread() // the thread the goroutine ends on
			}()
			err = call()
		}()
		if !<-done {
			t.Skip("no thread-exit hook on this platform")
		}
		if !errors.Is(err, storectx.ErrNullArgument) {
			t.Errorf("call %d on a nil Task: want NULL_ARGUMENT, got %v", i, err)
		}
		time.Sleep(50 * time.Millisecond) // Go ends a locked goroutine's thread as it exits
		if guest.WatchedExits() != before {
			t.Errorf("call %d: the goroutine ended locked to its thread (Go ended the thread)", i)
		}
	}
	if err := nilTask.Close(); err != nil {
		t.Errorf("Close of a nil Task: %v", err)
	}
}

// Dropped without Release or Close: an AsyncStore, its WriteGuard (lock
// held), and a Task (and a copy of it) holding another store's lock
// through an async entry. Once the collector has run, every lock is free
// again (seen through a Clone kept aside).
func TestTheCollectorReleasesWhatWasDropped(t *testing.T) {
	id1, h1 := newStore(t)
	id2, h2 := newStore(t)
	var keep1, keep2 *storectx.AsyncStore
	func() {
		s1, err := storectx.NewAsyncStore(id1, h1)
		if err != nil {
			t.Fatal(err)
		}
		keep1 = s1.Clone()
		if _, err := s1.TryWrite(); err != nil { // guard dropped, lock held
			t.Fatal(err)
		}
		s2, err := storectx.NewAsyncStore(id2, h2)
		if err != nil {
			t.Fatal(err)
		}
		keep2 = s2.Clone()
		task := storectx.NewTask()
		w, err := task.Write(s2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := task.InstallAsync(w); err != nil {
			t.Fatal(err)
		}
		copied := *task
		_, _ = copied.Depth()
	}()
	defer keep1.Release()
	defer keep2.Release()
	for i, s := range []*storectx.AsyncStore{keep1, keep2} {
		var err error
		for try := 0; try < 100; try++ {
			runtime.GC()
			var w *storectx.WriteGuard
			if w, err = s.TryWrite(); err == nil {
				w.Release()
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("store %d: still locked after 100 collections: %v", i+1, err)
		}
	}
}

// Clone of a released AsyncStore answers nil; a host that uses that nil
// (or a nil WriteGuard) must get the released answers, not a nil-pointer
// panic: ErrStaleHandle, ID 0, Clone nil, Store 0, Release a no-op.
func TestNilAsyncStoreAndWriteGuardAreRefused(t *testing.T) {
	id, h := newStore(t)
	s, err := storectx.NewAsyncStore(id, h)
	if err != nil {
		t.Fatal(err)
	}
	s.Release()
	nilStore := s.Clone()
	if nilStore != nil {
		t.Fatalf("Clone of a released AsyncStore: %v, want nil", nilStore)
	}
	var nilGuard *storectx.WriteGuard
	task := storectx.NewTask()
	defer task.Close()
	steps := []struct {
		name string
		f    func() error
	}{
		{"TryWrite", func() error { _, err := nilStore.TryWrite(); return err }},
		{"Write", func() error { _, err := task.Write(nilStore, time.Millisecond); return err }},
		{"InstallAsync", func() error { _, err := task.InstallAsync(nilGuard); return err }},
		{"ID", func() error {
			if nilStore.ID() != 0 {
				return errors.New("nonzero ID")
			}
			return storectx.ErrStaleHandle
		}},
		{"Clone", func() error {
			if nilStore.Clone() != nil {
				return errors.New("non-nil Clone")
			}
			return storectx.ErrStaleHandle
		}},
		{"Store", func() error {
			if nilGuard.Store() != 0 {
				return errors.New("nonzero Store")
			}
			return storectx.ErrStaleHandle
		}},
		{"Release", func() error { nilStore.Release(); nilGuard.Release(); return storectx.ErrStaleHandle }},
	}
	for _, st := range steps {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s on nil panicked: %v", st.name, r)
				}
			}()
			if err := st.f(); !errors.Is(err, storectx.ErrStaleHandle) {
				t.Errorf("%s on nil: want STALE_HANDLE, got %v", st.name, err)
			}
		}()
	}
	if d, err := task.Depth(); d != 0 || err != nil {
		t.Fatalf("the task after the nil calls: %d, %v", d, err)
	}
}
