// Tests of misuse: one Task used from two goroutines at once, stale and
// forged handles, released objects, and that every error's message comes
// from the failing call itself.
package storectx_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.invalid/storectx"
	"example.invalid/storectx/internal/guest"
)

// While one goroutine's Call is in flight on a task (a 200 ms guest call),
// another goroutine's calls on that task fail with BUSY and change nothing;
// the guest sees the task's store before and after.
func TestTaskUsedDuringAnotherGoroutinesCallIsBusy(t *testing.T) {
	id, h := newStore(t)
	task := storectx.NewTask()
	defer task.Close()
	if _, err := task.Install(id, h); err != nil {
		t.Fatal(err)
	}
	arg := guest.NewProbeArg(uint64(id), h)
	defer arg.Free()
	type result struct {
		v   int64
		err error
	}
	done := make(chan result)
	go func() {
		// The lookups below hold the task for a moment each: a Call that
		// starts during one is refused as BUSY (concurrent use, as
		// documented), so it tries again until it owns the task.
		for {
			v, err := task.Call(guest.SleepProbe, arg.Addr())
			if !errors.Is(err, storectx.ErrBusy) {
				done <- result{v, err}
				return
			}
			runtime.Gosched()
		}
	}()
	// Wait until the call is in flight: before it starts, lookups succeed.
	for {
		_, err := task.GetCurrentTransient(id)
		if errors.Is(err, storectx.ErrBusy) {
			break
		}
		if err != nil {
			t.Fatalf("lookup before the call: %v", err)
		}
		select {
		case r := <-done:
			t.Fatalf("the 200 ms call ended before any lookup overlapped it: %d, %v", r.v, r.err)
		default:
		}
		time.Sleep(time.Millisecond)
	}
	// Well inside the 200 ms call now: everything is refused.
	other, oh := newStore(t)
	_, err := task.Install(other, oh)
	expectStatus(t, err, storectx.ErrBusy, "install during another goroutine's call")
	expectStatus(t, task.Close(), storectx.ErrBusy, "close during another goroutine's call")
	expectStatus(t, task.Pin(), storectx.ErrBusy, "pin during another goroutine's call")
	r := <-done
	if r.err != nil || r.v != 0 {
		t.Fatalf("the guest call: %d, %v", r.v, r.err)
	}
	if n, err := task.Depth(); n != 1 || err != nil {
		t.Fatalf("depth after the refused calls: %d, %v", n, err)
	}
	if _, err := task.GetCurrentTransient(id); err != nil {
		t.Fatalf("the task after its call: %v", err)
	}
}

// Eight goroutines hammer one task with install/uninstall pairs of their
// own stores (for up to 3 s, until 1,000 calls were refused): each call
// succeeds, or fails with BUSY (another goroutine's call is in flight) or
// OUT_OF_ORDER (another goroutine's entry is on top); never anything else,
// and the task ends empty. Meanwhile every thread's own stack is empty
// whenever a goroutine looks.
func TestConcurrentUseOfOneTaskIsRefusedNotCorrupted(t *testing.T) {
	const goroutines = 8
	deadline := time.Now().Add(3 * time.Second)
	start := make(chan struct{})
	task := storectx.NewTask()
	defer task.Close()
	var errs errorSink
	var busy, ok atomic.Int64
	stop := make(chan struct{})
	watcher := make(chan int)
	go func() {
		bad := 0
		for {
			select {
			case <-stop:
				watcher <- bad
				return
			default:
				if storectx.ThreadDepth() != 0 {
					bad++
				}
				runtime.Gosched()
			}
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < goroutines; i++ {
		id, h := newStore(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for r := 0; busy.Load() < 1000 && (r%64 != 0 || time.Now().Before(deadline)); r++ {
				g, err := task.Install(id, h)
				if errors.Is(err, storectx.ErrBusy) {
					busy.Add(1)
					continue
				}
				if err != nil {
					errs.add("install: %v", err)
					return
				}
				for {
					err := task.Uninstall(g)
					if err == nil {
						ok.Add(1)
						break
					}
					if errors.Is(err, storectx.ErrBusy) {
						busy.Add(1)
					} else if !errors.Is(err, storectx.ErrOutOfOrder) {
						errs.add("uninstall: %v", err)
						return
					}
					runtime.Gosched()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(stop)
	bad := <-watcher
	errs.check(t)
	if bad != 0 {
		t.Fatalf("%d times a thread's stack held entries between calls", bad)
	}
	if n, err := task.Depth(); n != 0 || err != nil {
		t.Fatalf("the hammered task ends with %d entries (%v)", n, err)
	}
	t.Logf("%d install/uninstall pairs, %d calls refused as BUSY", ok.Load(), busy.Load())
	if busy.Load() == 0 {
		t.Fatal("no call was ever refused: the goroutines never overlapped")
	}
}

// A task pinned by one goroutine is busy for every other goroutine.
func TestPinnedTaskIsBusyForOtherGoroutines(t *testing.T) {
	id, h := newStore(t)
	task := storectx.NewTask()
	defer task.Close()
	if _, err := task.Install(id, h); err != nil {
		t.Fatal(err)
	}
	pinned, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		if err := task.Pin(); err != nil {
			done <- err
			return
		}
		close(pinned)
		<-release
		done <- task.Unpin()
	}()
	<-pinned
	_, err := task.GetCurrentTransient(id)
	expectStatus(t, err, storectx.ErrBusy, "lookup while another goroutine pins the task")
	expectStatus(t, task.Pin(), storectx.ErrBusy, "pin while another goroutine pins the task")
	expectStatus(t, task.Unpin(), storectx.ErrBusy, "unpin of another goroutine's pin")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := task.GetCurrentTransient(id); err != nil {
		t.Fatalf("after the pin ended: %v", err)
	}
	expectStatus(t, task.Unpin(), storectx.ErrInvalidArgument, "unpin of a task that is not pinned")
}

// Stale, zeroed, forged, foreign and wrong-kind handles each get a status,
// and the task's entry survives all of them.
func TestStaleAndForgedHandles(t *testing.T) {
	id, h := newStore(t)
	task := storectx.NewTask()
	defer task.Close()
	g, err := task.Install(id, h)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := task.GetCurrent(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.ReleaseBorrow(b); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, task.ReleaseBorrow(b), storectx.ErrNotBorrowed, "second borrow release")
	expectStatus(t, task.Uninstall(storectx.InstallGuard{}), storectx.ErrStaleHandle, "zeroed guard")
	expectStatus(t, task.ReleaseBorrow(storectx.Borrow{}), storectx.ErrStaleHandle, "zeroed borrow")
	expectStatus(t, task.Unpause(storectx.PauseGuard{}), storectx.ErrStaleHandle, "zeroed pause")

	// Every single-bit change of the guard, and the guard as another kind.
	for bit := 0; bit < 64; bit++ {
		forged := storectx.InstallGuardFromRaw(g.Raw() ^ 1<<bit)
		if err := task.Uninstall(forged); err == nil {
			t.Fatalf("a guard with bit %d flipped uninstalled the entry", bit)
		}
	}
	if err := task.ReleaseBorrow(storectx.BorrowFromRaw(g.Raw())); err == nil {
		t.Fatal("an install guard was accepted as a borrow")
	}
	if err := task.Unpause(storectx.PauseGuardFromRaw(g.Raw())); err == nil {
		t.Fatal("an install guard was accepted as a pause guard")
	}

	// Another task's guard names no entry while this task's call runs.
	other := storectx.NewTask()
	defer other.Close()
	expectStatus(t, other.Uninstall(g), storectx.ErrStaleHandle, "a guard through another task")
	if ok, err := other.Installed(g); ok || err != nil {
		t.Fatalf("another task sees the guard installed: %v %v", ok, err)
	}
	if ok, err := task.Installed(g); !ok || err != nil {
		t.Fatalf("the entry did not survive the forged handles: %v %v", ok, err)
	}
	if err := task.Uninstall(g); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, task.Uninstall(g), storectx.ErrStaleHandle, "second uninstall")

	// Released and consumed heap objects.
	aid, ah := newStore(t)
	s, err := storectx.NewAsyncStore(aid, ah)
	if err != nil {
		t.Fatal(err)
	}
	clone := s.Clone()
	s.Release()
	s.Release()
	_, err = s.TryWrite()
	expectStatus(t, err, storectx.ErrStaleHandle, "try_write of a released AsyncStore")
	if s.ID() != 0 || s.Clone() != nil {
		t.Fatal("a released AsyncStore still answers")
	}
	w, err := clone.TryWrite() // the clone keeps the store alive
	if err != nil {
		t.Fatal(err)
	}
	if w.Store() != ah {
		t.Fatalf("write guard store %#x, want %#x", w.Store(), ah)
	}
	ag, err := task.InstallAsync(w)
	if err != nil {
		t.Fatal(err)
	}
	_, err = task.InstallAsync(w)
	expectStatus(t, err, storectx.ErrStaleHandle, "a write guard installed twice")
	w.Release() // consumed by InstallAsync: does nothing
	w2, err := other.Write(clone, 0)
	expectStatus(t, err, storectx.ErrTimedOut, "write of a store another task holds")
	if w2 != nil {
		t.Fatal("a failed write returned a guard")
	}
	if err := task.Uninstall(ag); err != nil {
		t.Fatal(err)
	}
	// A failed InstallAsync leaves the guard, and its lock, with its owner.
	closed := storectx.NewTask()
	closed.Close()
	w4, err := clone.TryWrite()
	if err != nil {
		t.Fatal(err)
	}
	_, err = closed.InstallAsync(w4)
	expectStatus(t, err, storectx.ErrStaleHandle, "install_async through a closed task")
	if w4.Store() != ah {
		t.Fatal("a failed install_async took the write guard")
	}
	g2, err := other.InstallAsync(w4)
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Write(clone, storectx.Forever)
	expectStatus(t, err, storectx.ErrWouldDeadlock, "write of a store the task holds")
	if err := other.Uninstall(g2); err != nil {
		t.Fatal(err)
	}
	clone.Release()

	_, err = storectx.NewAsyncStore(0, ah)
	expectStatus(t, err, storectx.ErrInvalidArgument, "async store with id 0")
	_, err = storectx.NewAsyncStore(aid, 0)
	expectStatus(t, err, storectx.ErrNullArgument, "async store at address 0")
	_, err = task.Install(0, ah)
	expectStatus(t, err, storectx.ErrInvalidArgument, "install of id 0")
	_, err = task.Call(nil, 0)
	expectStatus(t, err, storectx.ErrNullArgument, "call of a NULL function")

	var zero storectx.Task // not made by NewTask: refused, not a crash
	_, err = zero.Install(aid, ah)
	expectStatus(t, err, storectx.ErrNullArgument, "a zero Task")
	if err := zero.Close(); err != nil {
		t.Fatalf("close of a zero Task: %v", err)
	}
}

// Many goroutines fail at once, each on its own store: every message names
// the failing goroutine's own store, because it was read in the same C call
// on the same thread (the issue saw messages about other goroutines' stores).
func TestEveryMessageComesFromItsOwnCall(t *testing.T) {
	const goroutines, rounds = 64, 200
	var errs errorSink
	var wg sync.WaitGroup
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			task := storectx.NewTask()
			defer task.Close()
			mine := storectx.NewStoreID()
			if _, err := task.Install(mine, 0x1000); err != nil {
				errs.add("%v", err)
				return
			}
			absent := storectx.NewStoreID()
			want := fmt.Sprintf("store %d is not on this thread's stack; top is store %d", absent, mine)
			for r := 0; r < rounds; r++ {
				_, err := task.GetCurrentTransient(absent)
				var e *storectx.Error
				if !errors.As(err, &e) || e.Status != storectx.ErrNotInstalled || !strings.Contains(e.Message, want) {
					errs.add("want NOT_INSTALLED %q, got %v", want, err)
					return
				}
				if r%16 == 0 {
					time.Sleep(10 * time.Microsecond)
				}
			}
		}()
	}
	wg.Wait()
	errs.check(t)
}

// The Go constants are the header's, and their names are the library's.
func TestStatusNames(t *testing.T) {
	cases := map[storectx.Status]string{
		storectx.OK:                "STORECTX_OK",
		storectx.ErrPaused:         "STORECTX_ERR_PAUSED",
		storectx.ErrStaleHandle:    "STORECTX_ERR_STALE_HANDLE",
		storectx.ErrBusy:           "STORECTX_ERR_BUSY",
		storectx.ErrAlreadyOnStack: "STORECTX_ERR_ALREADY_ON_STACK",
		storectx.ErrExhausted:      "STORECTX_ERR_EXHAUSTED",
	}
	for s, name := range cases {
		if s.Name() != name || !strings.HasPrefix(s.String(), name+": ") {
			t.Errorf("status %d: name %q, text %q; want %s", int32(s), s.Name(), s.String(), name)
		}
	}
	err := error(&storectx.Error{Op: "X", Status: storectx.ErrPaused, Name: "STORECTX_ERR_PAUSED", Message: "m"})
	if !errors.Is(err, storectx.ErrPaused) || errors.Is(err, storectx.ErrBusy) {
		t.Error("errors.Is does not match on the status")
	}
}
