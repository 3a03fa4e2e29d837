// Tests of the edges of a Task method (issue 19): a Go callback that
// panics or calls runtime.Goexit inside Call, a goroutine that exits while
// it has the task pinned, and a closing suspend that finds no free segment.
// In each case the thread must be left as the call found it, the task must
// keep (or drop, on Close) its entries, and no write lock may be left held
// by nobody.
package storectx_test

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"strings"
	"syscall"
	"testing"
	"time"

	"example.invalid/storectx"
	"example.invalid/storectx/internal/guest"
)

// heldTask is a task holding an async store's lock (an async entry) and a
// sync entry above it: what a request handler's task typically carries.
func heldTask(t *testing.T) (*storectx.Task, *storectx.AsyncStore, storectx.StoreID) {
	t.Helper()
	s, _, _ := newAsyncStore(t)
	task := storectx.NewTask()
	installWrite(t, task, s, storectx.Forever)
	sid, sh := newStore(t)
	if _, err := task.Install(sid, sh); err != nil {
		t.Fatal(err)
	}
	return task, s, sid
}

// onLockedThread runs f on a goroutine locked to its OS thread and answers
// storectx_depth() of that thread after f (and every deferred function f's
// frames ran, also when f ends the goroutine with runtime.Goexit), plus
// whatever f recovered.
func onLockedThread(f func() any) (depth int, recovered any, exited bool) {
	type result struct {
		depth     int
		recovered any
		exited    bool
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var res result
		res.exited = true
		defer func() {
			res.depth = storectx.ThreadDepth() // the same thread: locked
			done <- res
		}()
		res.recovered = f()
		res.exited = false
	}()
	r := <-done
	return r.depth, r.recovered, r.exited
}

// checkRecovered asserts what the issue asks after an unwinding: Close
// works, another task's Write gets the lock, and the handles are stale.
func checkTaskAndLockRecovered(t *testing.T, task *storectx.Task, s *storectx.AsyncStore) {
	t.Helper()
	if err := task.Close(); err != nil {
		t.Fatalf("Close after the unwinding: %v", err)
	}
	other := storectx.NewTask()
	defer other.Close()
	w, err := other.Write(s, 10*time.Second) // generous: only a lock held by nobody fails it
	if err != nil {
		t.Fatalf("another task's Write after the unwinding: %v", err)
	}
	w.Release()
}

// A Go callback made by the guest panics (or calls runtime.Goexit) inside
// two nested Calls; the host recovers above Call, as net/http does for
// every request. Afterwards the thread holds nothing, the task holds its
// entries (also the one the callback pushed), Close frees them and their
// lock, and the panic reached the host unchanged.
func TestPanicOrGoexitInACallbackUnwindsCleanly(t *testing.T) {
	for _, how := range []string{"panic", "Goexit"} {
		t.Run(how, func(t *testing.T) {
			task, s, sid := heldTask(t)
			id3, h3 := newStore(t)
			type boom struct{ msg string }
			inner := cgo.NewHandle(func() int64 {
				if _, err := task.Install(id3, h3); err != nil {
					t.Errorf("install inside the nested callback: %v", err)
				}
				if how == "panic" {
					panic(boom{"the import failed"})
				}
				runtime.Goexit()
				return 0
			})
			defer inner.Delete()
			outer := cgo.NewHandle(func() int64 {
				// The guest's Go import: nests another Call (another guest
				// frame) on the same task before the failure.
				_, _ = task.Call(guest.Callback, uintptr(inner))
				t.Errorf("the nested Call returned after the callback unwound")
				return 0
			})
			defer outer.Delete()

			depth, recovered, exited := onLockedThread(func() (rec any) {
				defer func() { rec = recover() }() // net/http's recover
				_, _ = task.Call(guest.Callback, uintptr(outer))
				t.Errorf("Call returned after its callback unwound")
				return nil
			})
			if how == "panic" {
				if b, ok := recovered.(boom); !ok || b.msg != "the import failed" {
					t.Fatalf("the host recovered %#v, want the callback's own panic value", recovered)
				}
			} else if !exited {
				t.Fatalf("runtime.Goexit did not end the goroutine")
			}
			if depth != 0 {
				t.Fatalf("after the %s, the OS thread that ran Call holds %d entries, want 0", how, depth)
			}
			if n, err := task.Depth(); n != 3 || err != nil {
				t.Fatalf("after the %s, the task holds %d entries (%v), want 3 (async, sync, the callback's)", how, n, err)
			}
			if top, err := task.ActiveStore(); top != id3 || err != nil {
				t.Fatalf("top store %d (%v), want the callback's %d", top, err, id3)
			}
			if _, err := task.GetCurrentTransient(sid); !errors.Is(err, storectx.ErrPaused) {
				t.Fatalf("the sync entry under the callback's: want PAUSED, got %v", err)
			}
			checkTaskAndLockRecovered(t, task, s)
		})
	}
}

// A goroutine that pins a task and then ends (returns, or runtime.Goexit)
// without Unpin: Go terminates its locked thread. The task must not answer
// ErrBusy for ever: when the thread exits the shim takes the entries back
// into the task, which is usable again and whose Close frees them.
func TestGoroutineExitingWhilePinnedReleasesTheTask(t *testing.T) {
	for _, how := range []string{"return", "Goexit"} {
		t.Run(how, func(t *testing.T) {
			task, s, sid := heldTask(t)
			done := make(chan error, 1)
			go func() {
				defer func() { done <- nil }()
				if err := task.Pin(); err != nil {
					done <- err
					return
				}
				if d := storectx.ThreadDepth(); d != 2 {
					done <- fmt.Errorf("pinned: thread depth %d, want 2", d)
					return
				}
				if syscall.Gettid() == syscall.Getpid() {
					done <- errors.New("pinned on the process's main thread, which Go never ends")
					return
				}
				if how == "Goexit" {
					runtime.Goexit()
				}
			}()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			// The thread exits asynchronously: wait for the task to come
			// back, generously (a task that never does fails here).
			deadline := time.Now().Add(20 * time.Second)
			for {
				n, err := task.Depth()
				if err == nil {
					if n != 2 {
						t.Fatalf("the task came back with %d entries, want 2", n)
					}
					break
				}
				if !errors.Is(err, storectx.ErrBusy) {
					t.Fatalf("depth of the orphaned task: %v", err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("20 s after its pinning goroutine ended, the task still answers %v", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := task.GetCurrentTransient(sid); err != nil {
				t.Fatalf("the sync entry after the pinned goroutine ended: %v", err)
			}
			checkTaskAndLockRecovered(t, task, s)
		})
	}
}

// fillTable lowers the segment table to a few thousand and answers the
// function that restores it; skips without the testing hook.
func lowTableLimit(t *testing.T) {
	t.Helper()
	if !guest.SetTableLimit(4096) {
		t.Skip("the library was built without the `testing` feature (no table-limit hook); " +
			"cargo test --features testing --test go_binding runs this test")
	}
	t.Cleanup(func() {
		guest.Unfill()
		guest.SetTableLimit(^uint(0) >> 1)
	})
}

// The closing suspend of a Task method finds the segment table exhausted:
// here a guest run by Call takes every free segment (also the one the
// task's resume gave back). The thread must not keep the task's entries
// (nor the async entry's lock): Call succeeds with the entries back in the
// task, or fails with them there too.
func TestClosingSuspendOfCallWithTheTableExhausted(t *testing.T) {
	task, s, _ := heldTask(t)
	lowTableLimit(t)
	var callErr error
	depth, _, _ := onLockedThread(func() any {
		_, callErr = task.Call(guest.Fill, 1<<20)
		return nil
	})
	if depth != 0 {
		t.Fatalf("the closing suspend failed (%v) and left %d entries on the thread", callErr, depth)
	}
	guest.Unfill()
	if n, err := task.Depth(); n != 2 || err != nil {
		t.Fatalf("the task after the exhausted Call: %d entries (%v), want 2; Call answered %v", n, err, callErr)
	}
	checkTaskAndLockRecovered(t, task, s)
}

// The same with the table exhausted before the call, for each method that
// pushes, on a task with no entries yet (its resume gives back nothing) and
// on one with entries: every call either succeeds with the entries in the
// task, or fails with EXHAUSTED having changed nothing; the thread never
// keeps anything, and a failed InstallAsync leaves the lock with its guard.
func TestClosingSuspendWithTheTableExhaustedBeforeTheCall(t *testing.T) {
	s, _, ah := newAsyncStore(t)
	sid, sh := newStore(t)
	lowTableLimit(t)
	for _, fresh := range []bool{true, false} {
		task := storectx.NewTask()
		if !fresh {
			if _, err := task.Install(storectx.NewStoreID(), 0x1000); err != nil {
				t.Fatal(err)
			}
		}
		want, _ := task.Depth()
		guest.FillSegments(1 << 20)
		w, err := s.TryWrite()
		if err != nil {
			t.Fatal(err)
		}
		type step struct {
			name string
			call func() (pushed bool, err error)
		}
		steps := []step{
			{"Install", func() (bool, error) { _, err := task.Install(sid, sh); return err == nil, err }},
			{"InstallAsync", func() (bool, error) { _, err := task.InstallAsync(w); return err == nil, err }},
			{"Call", func() (bool, error) {
				_, err := task.Call(guest.InstallLeave, uintptr(storectx.NewStoreID()))
				return err == nil, err
			}},
		}
		for _, st := range steps {
			var pushed bool
			var err error
			depth, _, _ := onLockedThread(func() any { pushed, err = st.call(); return nil })
			if depth != 0 {
				t.Fatalf("fresh=%v %s: the thread kept %d entries (%v)", fresh, st.name, depth, err)
			}
			if err != nil && !errors.Is(err, storectx.ErrExhausted) {
				t.Fatalf("fresh=%v %s: want success or EXHAUSTED, got %v", fresh, st.name, err)
			}
			if pushed {
				want++
			}
			if n, derr := task.Depth(); n != want || derr != nil {
				t.Fatalf("fresh=%v %s (%v): the task holds %d entries (%v), want %d", fresh, st.name, err, n, derr, want)
			}
			if st.name == "InstallAsync" && !pushed && w.Store() != ah {
				t.Fatalf("fresh=%v: a failed InstallAsync lost its guard", fresh)
			}
			if err != nil && !strings.Contains(err.Error(), "segment") {
				t.Logf("fresh=%v %s: %v", fresh, st.name, err)
			}
		}
		w.Release()
		guest.Unfill()
		if err := task.Close(); err != nil {
			t.Fatal(err)
		}
		expectLockFree(t, s, fmt.Sprintf("fresh=%v: the lock after Close", fresh))
	}
}

// The last fallback: the closing suspend finds no segment even after giving
// back the task's spare (here the test hook takes it first, as another
// thread could on a truly full table). The entries must not stay on a thread
// other goroutines run on: the call reports EXHAUSTED, saying the entries
// stay on this thread with the goroutine locked to it; other goroutines
// find the task busy; once segments are free, the goroutine's next call of
// the task (or its Close) takes them back and unlocks the thread.
func TestClosingSuspendWithNoSegmentAtAllKeepsTheGoroutineOnTheThread(t *testing.T) {
	for _, end := range []string{"next call", "Close"} {
		t.Run(end, func(t *testing.T) {
			task, s, _ := heldTask(t)
			lowTableLimit(t)
			storectx.TestingStealSpare(true)
			defer storectx.TestingStealSpare(false)
			var steps []string
			fail := func(format string, args ...any) { steps = append(steps, fmt.Sprintf(format, args...)) }
			depth, _, _ := onLockedThread(func() any {
				_, err := task.Call(guest.Fill, 1<<20)
				var e *storectx.Error
				if !errors.As(err, &e) || e.Status != storectx.ErrExhausted ||
					!strings.Contains(e.Message, "stay on this OS thread") {
					fail("Call with no segment left: want EXHAUSTED saying the entries stay, got %v", err)
				}
				if d := storectx.ThreadDepth(); d != 2 {
					fail("stuck: the thread holds %d entries, want the task's 2", d)
				}
				busy := make(chan error)
				go func() { _, err := task.Depth(); busy <- err }()
				if err := <-busy; !errors.Is(err, storectx.ErrBusy) {
					fail("another goroutine's call of the stuck task: want BUSY, got %v", err)
				}
				if end == "Close" {
					err := task.Close()
					if !errors.Is(err, storectx.ErrExhausted) {
						fail("Close with the table still full: want EXHAUSTED, got %v", err)
					}
				}
				guest.Unfill()
				storectx.TestingStealSpare(false)
				if end == "Close" {
					if err := task.Close(); err != nil {
						fail("Close once segments are free: %v", err)
					}
				} else if n, err := task.Depth(); n != 2 || err != nil {
					fail("the next call: %d entries, %v; want 2", n, err)
				}
				return nil
			})
			for _, s := range steps {
				t.Error(s)
			}
			if depth != 0 {
				t.Fatalf("after the %s, the thread still holds %d entries", end, depth)
			}
			checkTaskAndLockRecovered(t, task, s)
		})
	}
}
