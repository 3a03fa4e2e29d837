// Two tasks resident on one OS thread at once (both pinned by one
// goroutine, or one pinned inside the other's Call): the second one's
// entries are on top of the first one's. Ending the first one's residency
// (Unpin, Close, the end of its Call) before the second one's must not take
// the second task's entries with it, and the first one must not push above
// the second one's entries.
package storectx_test

import (
	"errors"
	"runtime"
	"runtime/cgo"
	"syscall"
	"testing"
	"time"

	"example.invalid/storectx"
	"example.invalid/storectx/internal/guest"
)

// Pins a then b on a locked goroutine; b holds x (sync) and y (async, its
// store's lock). Answers the stores.
func twoResident(t *testing.T, a, b *storectx.Task) (x storectx.StoreID, s *storectx.AsyncStore) {
	t.Helper()
	if err := a.Pin(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Install(storectx.NewStoreID(), 0x1000); err != nil {
		t.Fatal(err)
	}
	if err := b.Pin(); err != nil {
		t.Fatal(err)
	}
	aid, ah := newStore(t)
	var err error
	if s, err = storectx.NewAsyncStore(aid, ah); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Release)
	w, err := b.Write(s, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.InstallAsync(w); err != nil {
		t.Fatal(err)
	}
	x, xh := newStore(t)
	if _, err := b.Install(x, xh); err != nil {
		t.Fatal(err)
	}
	return x, s
}

// checkB asserts b still holds its two entries and its lock, then unpins b
// and a (in order) and checks the thread and both tasks.
func checkBThenUnpin(t *testing.T, a, b *storectx.Task, x storectx.StoreID, s *storectx.AsyncStore, aPinned bool) {
	t.Helper()
	if _, err := b.GetCurrentTransient(x); err != nil {
		t.Fatalf("b lost its top entry: %v", err)
	}
	if n, err := b.Depth(); n != 2 || err != nil {
		t.Fatalf("b holds %d entries (%v), want 2", n, err)
	}
	if w, err := s.TryWrite(); err == nil {
		w.Release()
		t.Fatalf("b's store lock was released under it")
	}
	if err := b.Unpin(); err != nil {
		t.Fatalf("b.Unpin: %v", err)
	}
	if aPinned {
		if err := a.Unpin(); err != nil {
			t.Fatalf("a.Unpin after b's: %v", err)
		}
	}
	if d := storectx.ThreadDepth(); d != 0 {
		t.Fatalf("the thread keeps %d entries after both unpinned", d)
	}
	if n, err := a.Depth(); n != 1 || err != nil {
		t.Fatalf("a holds %d entries (%v), want its 1", n, err)
	}
	if n, err := b.Depth(); n != 2 || err != nil {
		t.Fatalf("b holds %d entries (%v), want its 2", n, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := s.TryWrite()
	if err != nil {
		t.Fatalf("b's lock after b.Close: %v", err)
	}
	w.Release()
}

func onThread(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		f()
	}()
	<-done
}

func TestUnpinOutOfOrderIsRefused(t *testing.T) {
	onThread(t, func() {
		a, b := storectx.NewTask(), storectx.NewTask()
		defer a.Close()
		defer b.Close()
		x, s := twoResident(t, a, b)
		err := a.Unpin()
		if !errors.Is(err, storectx.ErrOutOfOrder) {
			t.Errorf("a.Unpin under b's entries: want OUT_OF_ORDER, got %v", err)
		}
		checkBThenUnpin(t, a, b, x, s, err != nil)
	})
}

func TestCloseOfATaskUnderAnotherIsRefused(t *testing.T) {
	onThread(t, func() {
		a, b := storectx.NewTask(), storectx.NewTask()
		defer b.Close()
		x, s := twoResident(t, a, b)
		err := a.Close()
		if !errors.Is(err, storectx.ErrOutOfOrder) {
			t.Errorf("a.Close under b's entries: want OUT_OF_ORDER, got %v", err)
		}
		checkBThenUnpin(t, a, b, x, s, err != nil)
		if err := a.Close(); err != nil {
			t.Errorf("a.Close after b unpinned: %v", err)
		}
	})
}

func TestPushOnATaskUnderAnotherIsRefused(t *testing.T) {
	onThread(t, func() {
		a, b := storectx.NewTask(), storectx.NewTask()
		defer a.Close()
		defer b.Close()
		x, s := twoResident(t, a, b)
		if _, err := a.Install(storectx.NewStoreID(), 0x2000); !errors.Is(err, storectx.ErrOutOfOrder) {
			t.Errorf("a.Install above b's entries: want OUT_OF_ORDER, got %v", err)
		}
		if _, err := a.Call(guest.InstallLeave, uintptr(storectx.NewStoreID())); !errors.Is(err, storectx.ErrOutOfOrder) {
			t.Errorf("a.Call above b's entries: want OUT_OF_ORDER, got %v", err)
		}
		// a, under b, must not borrow or pause b's top entry either.
		if _, _, err := a.GetCurrent(x); err == nil {
			t.Errorf("a borrowed b's top entry from under it")
		}
		if _, err := a.Pause(x); err == nil {
			t.Errorf("a paused b's top entry from under it")
		}
		checkBThenUnpin(t, a, b, x, s, true)
	})
}

// b is pinned inside a's Call and stays pinned after it (returned, or
// panicked through): a's Call must not take b's entries; a's come back to
// it once b unpins.
func TestCallEndingWithAnotherTaskPinnedAboveIt(t *testing.T) {
	for _, how := range []string{"return", "panic"} {
		t.Run(how, func(t *testing.T) {
			onThread(t, func() {
				a, b := storectx.NewTask(), storectx.NewTask()
				defer a.Close()
				defer b.Close()
				if _, err := a.Install(storectx.NewStoreID(), 0x1000); err != nil {
					t.Fatal(err)
				}
				var x storectx.StoreID
				var s *storectx.AsyncStore
				cb := cgo.NewHandle(func() int64 {
					if err := b.Pin(); err != nil {
						t.Error(err)
					}
					aid, ah := newStore(t)
					var err error
					if s, err = storectx.NewAsyncStore(aid, ah); err != nil {
						t.Error(err)
					}
					w, _ := b.Write(s, 0)
					if _, err := b.InstallAsync(w); err != nil {
						t.Error(err)
					}
					var xh uintptr
					x, xh = newStore(t)
					if _, err := b.Install(x, xh); err != nil {
						t.Error(err)
					}
					if how == "panic" {
						panic("boom")
					}
					return 0
				})
				defer cb.Delete()
				var callErr error
				func() {
					defer func() { _ = recover() }()
					_, callErr = a.Call(guest.Callback, uintptr(cb))
				}()
				defer s.Release()
				if how == "return" && !errors.Is(callErr, storectx.ErrOutOfOrder) {
					t.Errorf("a.Call ending under b's entries: want OUT_OF_ORDER, got %v", callErr)
				}
				checkBThenUnpin(t, a, b, x, s, false)
			})
		})
	}
}

// a is pinned with entry x; b (another task of the same goroutine) has no
// entries of its own, or b is resident under a. b must not borrow, pause,
// release or clone a's entries or handles: a borrow taken through b could
// never be released through b once a unpins (b's handle is stale then), so
// a's entry would stay borrowed for ever; a's own borrow released through
// b leaves a's count wrong.
func TestAnotherTaskCannotBorrowOrReleaseAPinnedTasksEntries(t *testing.T) {
	onThread(t, func() {
		a, b := storectx.NewTask(), storectx.NewTask()
		defer a.Close()
		defer b.Close()
		x, xh := newStore(t)
		g, err := a.Install(x, xh)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Pin(); err != nil {
			t.Fatal(err)
		}
		_, first, err := a.GetCurrent(x)
		if err != nil {
			t.Fatal(err)
		}
		_, bor, err := a.GetCurrent(x)
		if err != nil {
			t.Fatal(err)
		}
		p, err := a.Pause(x)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Unpause(p); err != nil {
			t.Fatal(err)
		}
		p, err = a.Pause(x)
		if err != nil {
			t.Fatal(err)
		}
		// Looking is allowed.
		if _, err := b.GetCurrentTransient(x); err != nil {
			t.Errorf("b cannot look at a's store: %v", err)
		}
		if _, _, err := b.GetCurrent(x); err == nil {
			t.Errorf("b borrowed a's entry")
		}
		if _, _, _, err := b.GetCurrentUnborrowed(); err == nil {
			t.Errorf("b borrowed a's entry (unborrowed)")
		}
		if s, _, _, err := b.GetCurrentAsync(x); err == nil {
			if s != nil {
				s.Release()
			}
			t.Errorf("b borrowed a's entry (async)")
		}
		if _, err := b.Pause(x); err == nil {
			t.Errorf("b paused a's entry")
		}
		if err := b.Unpause(p); !errors.Is(err, storectx.ErrStaleHandle) {
			t.Errorf("b.Unpause of a's pause guard: want STALE_HANDLE, got %v", err)
		}
		if _, err := b.BorrowClone(bor); !errors.Is(err, storectx.ErrStaleHandle) {
			t.Errorf("b.BorrowClone of a's borrow: want STALE_HANDLE, got %v", err)
		}
		if err := b.ReleaseBorrow(bor); !errors.Is(err, storectx.ErrStaleHandle) {
			t.Errorf("b.ReleaseBorrow of a's borrow: want STALE_HANDLE, got %v", err)
		}
		// a's own accounting is intact: its pause and borrows undo cleanly.
		if err := a.Unpause(p); err != nil {
			t.Errorf("a.Unpause: %v", err)
		}
		if err := a.ReleaseBorrow(bor); err != nil {
			t.Errorf("a.ReleaseBorrow of its own borrow: %v", err)
		}
		if err := a.ReleaseBorrow(first); err != nil {
			t.Errorf("a.ReleaseBorrow of its first borrow: %v", err)
		}
		if err := a.Unpin(); err != nil {
			t.Fatal(err)
		}
		if err := a.Uninstall(g); err != nil {
			t.Errorf("a.Uninstall after its borrows were released: %v (a borrow taken through b is left)", err)
		}
	})
}

// The goroutine ends (runtime.Goexit in a's callback) with b pinned above
// a's Call: Go ends the locked thread, and the thread-exit hook gives each
// task back its own entries, b's first.
func TestGoexitWithAnotherTaskPinnedAboveTheCall(t *testing.T) {
	a, b := storectx.NewTask(), storectx.NewTask()
	defer a.Close()
	defer b.Close()
	if _, err := a.Install(storectx.NewStoreID(), 0x1000); err != nil {
		t.Fatal(err)
	}
	x, xh := newStore(t)
	cb := cgo.NewHandle(func() int64 {
		if err := b.Pin(); err != nil {
			t.Error(err)
		}
		if _, err := b.Install(x, xh); err != nil {
			t.Error(err)
		}
		runtime.Goexit()
		return 0
	})
	defer cb.Delete()
	// Not on the process's main thread: Go never ends it (a goroutine that
	// ends locked to it wedges it), so nothing would give the tasks back.
	for {
		done := make(chan bool)
		go func() {
			runtime.LockOSThread()
			if syscall.Gettid() == syscall.Getpid() {
				runtime.UnlockOSThread()
				done <- false
				return
			}
			defer close(done)
			_, _ = a.Call(guest.Callback, uintptr(cb))
		}()
		if _, retry := <-done; !retry {
			break
		}
	}
	var err error
	for i := 0; i < 500; i++ { // the thread's exit follows the goroutine's
		if _, err = a.Depth(); err == nil {
			if _, err = b.Depth(); err == nil {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, err := a.Depth(); n != 1 || err != nil {
		t.Fatalf("a holds %d entries (%v), want its 1", n, err)
	}
	if n, err := b.Depth(); n != 1 || err != nil {
		t.Fatalf("b holds %d entries (%v), want its 1", n, err)
	}
	if top, err := b.ActiveStore(); top != x || err != nil {
		t.Fatalf("b's top %d (%v), want %d", top, err, x)
	}
}
