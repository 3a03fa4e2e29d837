// Panics and Goexit several Calls deep across two tasks, callbacks that
// use other tasks, and a Write racing the Close of its task.
package storectx_test

import (
	"errors"
	"runtime"
	"runtime/cgo"
	"sync"
	"testing"
	"time"

	"example.invalid/storectx"
	"example.invalid/storectx/internal/guest"
)

// A panic value whose Error method itself panics: nothing on the way up
// may format it.
type poisonErr struct{}

func (poisonErr) Error() string { panic("poisonErr.Error called") }

// a.Call -> callback -> b.Call -> callback -> a.Call (a again, resident
// below b: refused, pushes nothing) -> b installs -> the innermost callback
// panics (or calls Goexit). Both tasks keep exactly their own entries, the
// thread is left empty, both Closes free their locks.
func TestPanicThroughCallsOfTwoTasks(t *testing.T) {
	for _, how := range []string{"panic", "Goexit"} {
		t.Run(how, func(t *testing.T) {
			a, sa, _ := heldTask(t)
			b, sb, _ := heldTask(t)
			idb, hb := newStore(t)
			var nestedErr error
			innermost := cgo.NewHandle(func() int64 {
				_, nestedErr = a.Call(guest.Depth, 0)
				if _, err := b.Install(idb, hb); err != nil {
					t.Errorf("b.Install in the innermost callback: %v", err)
				}
				if how == "panic" {
					panic(poisonErr{})
				}
				runtimeGoexit()
				return 0
			})
			defer innermost.Delete()
			middle := cgo.NewHandle(func() int64 {
				_, _ = b.Call(guest.Callback, uintptr(innermost))
				t.Errorf("b.Call returned after its callback unwound")
				return 0
			})
			defer middle.Delete()
			depth, recovered, exited := onLockedThread(func() (rec any) {
				defer func() { rec = recover() }()
				_, _ = a.Call(guest.Callback, uintptr(middle))
				return nil
			})
			if how == "panic" {
				if _, ok := recovered.(poisonErr); !ok {
					t.Fatalf("recovered %T, want the callback's poisonErr", recovered)
				}
			} else if !exited {
				t.Fatalf("Goexit did not end the goroutine")
			}
			if !errors.Is(nestedErr, storectx.ErrOutOfOrder) {
				t.Errorf("a.Call above b's entries: want OUT_OF_ORDER, got %v", nestedErr)
			}
			if depth != 0 {
				t.Fatalf("the thread keeps %d entries", depth)
			}
			if n, err := a.Depth(); n != 2 || err != nil {
				t.Fatalf("a holds %d entries (%v), want 2", n, err)
			}
			if n, err := b.Depth(); n != 3 || err != nil {
				t.Fatalf("b holds %d entries (%v), want 3", n, err)
			}
			if top, err := b.ActiveStore(); top != idb || err != nil {
				t.Fatalf("b's top store %d (%v), want %d", top, err, idb)
			}
			checkTaskAndLockRecovered(t, a, sa)
			checkTaskAndLockRecovered(t, b, sb)
		})
	}
}

// A callback closes another, idle task (allowed: its entries are freed and
// its lock released), and tries to close the task running it (refused).
func TestCallbackClosesTasks(t *testing.T) {
	a := storectx.NewTask()
	defer a.Close()
	c, sc, _ := heldTask(t)
	var selfErr, otherErr error
	cb := cgo.NewHandle(func() int64 {
		selfErr = a.Close()
		otherErr = c.Close()
		return 0
	})
	defer cb.Delete()
	depth, _, _ := onLockedThread(func() any {
		if _, err := a.Call(guest.Callback, uintptr(cb)); err != nil {
			t.Errorf("a.Call: %v", err)
		}
		return nil
	})
	if depth != 0 {
		t.Fatalf("the thread keeps %d entries", depth)
	}
	if !errors.Is(selfErr, storectx.ErrBusy) {
		t.Errorf("Close of the running task inside its Call: want BUSY, got %v", selfErr)
	}
	if otherErr != nil {
		t.Errorf("Close of another idle task in a callback: %v", otherErr)
	}
	expectLockFree(t, sc, "the closed task's lock")
}

// Write waits on a store another task holds; another goroutine closes the
// waiting Write's task meanwhile. The Write ends (STALE_HANDLE: closed, or
// BUSY if a try met the Close), takes no lock, and the holder still has it.
func TestWriteRacingCloseOfItsTask(t *testing.T) {
	for round := 0; round < 50; round++ {
		holder, s, _ := heldTask(t)
		waiter := storectx.NewTask()
		done := make(chan error, 1)
		go func() {
			w, err := waiter.Write(s, 10*time.Second)
			if err == nil {
				w.Release()
			}
			done <- err
		}()
		time.Sleep(time.Duration(round%5) * 100 * time.Microsecond)
		for {
			err := waiter.Close()
			if err == nil {
				break
			}
			if !errors.Is(err, storectx.ErrBusy) {
				t.Fatalf("Close of the waiting task: %v", err)
			}
		}
		select {
		case err := <-done:
			// STALE_HANDLE once closed; BUSY when a try met the Close
			// itself (two goroutines using one task).
			if !errors.Is(err, storectx.ErrStaleHandle) && !errors.Is(err, storectx.ErrBusy) {
				t.Fatalf("round %d: the Write of a closed task answered %v", round, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Write went on waiting after its task was closed", round)
		}
		if _, err := s.TryWrite(); !errors.Is(err, storectx.ErrBusy) {
			t.Fatalf("round %d: the holder's lock: %v", round, err)
		}
		checkTaskAndLockRecovered(t, holder, s)
	}
}

func runtimeGoexit() { runtime.Goexit() }

// The outer callback recovers the panic of a nested Call of the same task
// and returns to its guest normally: the nested Call frame was ended by the
// unwinding, the outer one by its return; the task keeps every entry
// (also the one the panicking callback pushed), the thread nothing.
func TestCallbackRecoversANestedCallsPanicAndReturns(t *testing.T) {
	task, s, _ := heldTask(t)
	id3, h3 := newStore(t)
	inner := cgo.NewHandle(func() int64 {
		if _, err := task.Install(id3, h3); err != nil {
			t.Errorf("install in the inner callback: %v", err)
		}
		panic("inner")
	})
	defer inner.Delete()
	var recovered any
	var depthInside int
	outer := cgo.NewHandle(func() int64 {
		func() {
			defer func() { recovered = recover() }()
			_, _ = task.Call(guest.Callback, uintptr(inner))
		}()
		depthInside, _ = task.Depth()
		return 42
	})
	defer outer.Delete()
	var v int64
	var err error
	depth, _, _ := onLockedThread(func() any {
		v, err = task.Call(guest.Callback, uintptr(outer))
		return nil
	})
	if recovered != "inner" {
		t.Fatalf("the outer callback recovered %#v", recovered)
	}
	if v != 42 || err != nil {
		t.Fatalf("the outer Call answered %d, %v", v, err)
	}
	if depthInside != 3 {
		t.Fatalf("inside the outer callback after the recovery the task had %d entries, want 3", depthInside)
	}
	if depth != 0 {
		t.Fatalf("the thread keeps %d entries", depth)
	}
	if n, err := task.Depth(); n != 3 || err != nil {
		t.Fatalf("the task holds %d entries (%v), want 3", n, err)
	}
	checkTaskAndLockRecovered(t, task, s)
}

// GOMAXPROCS=1: the lock's holder is a goroutine with its task pinned
// (locked to its thread) that sleeps before it uninstalls; 200 goroutines
// wait for the lock with Write, half of them from inside a Call's callback
// (locked to their thread too). Every Write gets the lock in turn: nothing
// waits in a way that keeps the only P from the holder.
func TestWritersAndAPinnedHolderWithOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	holder, s, _ := heldTask(t)
	defer holder.Close()
	released := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := holder.Pin(); err != nil {
			t.Error(err)
		}
		time.Sleep(20 * time.Millisecond)
		if err := holder.Unpin(); err != nil {
			t.Error(err)
		}
		if err := holder.Close(); err != nil { // releases the lock
			t.Error(err)
		}
		close(released)
	}()
	start := time.Now()
	var wg sync.WaitGroup
	var errs errorSink
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(inCall bool) {
			defer wg.Done()
			task := storectx.NewTask()
			defer task.Close()
			write := func() int64 {
				w, err := task.Write(s, 20*time.Second)
				if err != nil {
					errs.add("Write: %v", err)
					return 0
				}
				time.Sleep(50 * time.Microsecond)
				w.Release()
				return 0
			}
			if !inCall {
				write()
				return
			}
			cb := cgo.NewHandle(write)
			defer cb.Delete()
			if _, err := task.Call(guest.Callback, uintptr(cb)); err != nil {
				errs.add("Call: %v", err)
			}
		}(i%2 == 0)
	}
	wg.Wait()
	<-released
	errs.check(t)
	t.Logf("200 writers with one P and a pinned holder: %v", time.Since(start))
}
