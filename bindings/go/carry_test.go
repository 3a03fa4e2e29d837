// Tests that a goroutine's entries follow it from thread to thread: the
// issue's 2,000-goroutine scenario, nesting across sleeps, async stores
// shared between goroutines, and cancellation by Close.
package storectx_test

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"example.invalid/storectx"
)

func TestMain(m *testing.M) {
	fmt.Printf("storectx %s, GOMAXPROCS=%d\n", storectx.Version(), runtime.GOMAXPROCS(0))
	os.Exit(m.Run())
}

// testStore is the embedder's store; C sees it as a cgo.Handle.
type testStore struct{ id storectx.StoreID }

func newStore(t testing.TB) (storectx.StoreID, uintptr) {
	id := storectx.NewStoreID()
	h := cgo.NewHandle(&testStore{id: id})
	t.Cleanup(h.Delete)
	return id, uintptr(h)
}

// errorSink keeps the count and the first few errors of many goroutines.
type errorSink struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (s *errorSink) add(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if len(s.first) < 10 {
		s.first = append(s.first, fmt.Sprintf(format, args...))
	}
}

func (s *errorSink) check(t *testing.T) {
	t.Helper()
	if s.n != 0 {
		t.Fatalf("%d errors; first ones:\n%s", s.n, strings.Join(s.first, "\n"))
	}
}

func expectStatus(t *testing.T, err error, want storectx.Status, what string) *storectx.Error {
	t.Helper()
	var e *storectx.Error
	if !errors.As(err, &e) || !errors.Is(err, want) {
		t.Fatalf("%s: want %s, got %v", what, want.Name(), err)
	}
	if e.Message == "" || e.Name != want.Name() {
		t.Fatalf("%s: error without its message or name: %#v", what, e)
	}
	return e
}

// The scenario: install -> time.Sleep(1ms) -> get_current ->
// uninstall in 2,000 goroutines. Through raw cgo calls this gave 1,958 wrong
// answers; carried by a Task, every lookup answers the goroutine's own store.
func TestTwoThousandGoroutinesSleepAndFindTheirStore(t *testing.T) {
	const goroutines = 2000
	var errs errorSink
	var hops atomic.Int64
	var wg sync.WaitGroup
	// A goroutine locked to its own thread wakes every 100 µs: each time
	// the P moves to its thread and back to another one, so goroutines
	// change threads even with GOMAXPROCS=1 (where time.Sleep alone may
	// keep them all on one thread).
	stopHopper := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for {
			select {
			case <-stopHopper:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			task := storectx.NewTask()
			defer task.Close()
			id := storectx.NewStoreID()
			h := cgo.NewHandle(&testStore{id: id})
			defer h.Delete()

			before := syscall.Gettid()
			g, err := task.Install(id, uintptr(h))
			if err != nil {
				errs.add("install: %v", err)
				return
			}
			if d := storectx.ThreadDepth(); d != 0 {
				errs.add("the thread kept %d entries after Install returned", d)
			}
			time.Sleep(time.Millisecond)
			if syscall.Gettid() != before {
				hops.Add(1)
			}
			addr, b, err := task.GetCurrent(id)
			if err != nil {
				errs.add("get_current after the sleep: %v", err)
				return
			}
			if addr != uintptr(h) || cgo.Handle(addr).Value().(*testStore).id != id {
				errs.add("get_current answered another store: %#x", addr)
			}
			if err := task.ReleaseBorrow(b); err != nil {
				errs.add("borrow_release: %v", err)
			}
			if err := task.Uninstall(g); err != nil {
				errs.add("uninstall: %v", err)
			}
			if n, err := task.Depth(); n != 0 || err != nil {
				errs.add("depth after uninstall: %d, %v", n, err)
			}
		}()
	}
	wg.Wait()
	close(stopHopper)
	errs.check(t)
	t.Logf("%d of %d goroutines woke on another OS thread", hops.Load(), goroutines)
	if hops.Load() == 0 {
		t.Fatalf("no goroutine changed thread across its sleep: the test proved nothing")
	}
}

// Two sync stores and one async store nest in one task, with sleeps (thread
// hops) between every step; paused and out-of-order uses are refused with
// messages naming this goroutine's own stores.
func TestNestedStoresAcrossSleeps(t *testing.T) {
	const goroutines = 200
	var errs errorSink
	var wg sync.WaitGroup
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := nestOnce(); err != nil {
				errs.add("%v", err)
			}
		}()
	}
	wg.Wait()
	errs.check(t)
}

func nestOnce() error {
	nap := func() { time.Sleep(time.Duration(100+time.Now().UnixNano()%400) * time.Microsecond) }
	task := storectx.NewTask()
	defer task.Close()
	a, b, c := storectx.NewStoreID(), storectx.NewStoreID(), storectx.NewStoreID()
	ha, hb, hc := cgo.NewHandle("a"), cgo.NewHandle("b"), cgo.NewHandle("c")
	defer ha.Delete()
	defer hb.Delete()
	defer hc.Delete()
	sb, err := storectx.NewAsyncStore(b, uintptr(hb))
	if err != nil {
		return err
	}
	defer sb.Release()

	ga, err := task.Install(a, uintptr(ha))
	if err != nil {
		return err
	}
	nap()
	ga2, err := task.Install(a, uintptr(ha)) // a nested call on the same store
	if err != nil {
		return fmt.Errorf("nested install of a: %w", err)
	}
	if _, err := task.Install(a, uintptr(hb)); !errors.Is(err, storectx.ErrAddressMismatch) {
		return fmt.Errorf("same id, other address: want ADDRESS_MISMATCH, got %v", err)
	}
	nap()
	w, err := task.Write(sb, storectx.Forever)
	if err != nil {
		return err
	}
	gb, err := task.InstallAsync(w)
	if err != nil {
		return err
	}
	nap()
	if _, err := task.Write(sb, storectx.Forever); !errors.Is(err, storectx.ErrWouldDeadlock) {
		return fmt.Errorf("write of a store the task holds: want WOULD_DEADLOCK, got %v", err)
	}
	_, err = task.GetCurrentTransient(a)
	var e *storectx.Error
	if !errors.As(err, &e) || e.Status != storectx.ErrPaused ||
		!strings.Contains(e.Message, fmt.Sprintf("store %d", a)) ||
		!strings.Contains(e.Message, fmt.Sprintf("top is store %d", b)) {
		return fmt.Errorf("lookup of paused a: want PAUSED naming stores %d and %d, got %v", a, b, err)
	}
	if p, _ := task.IsPaused(a); !p {
		return fmt.Errorf("a is not paused under b")
	}
	if _, err := task.Install(a, uintptr(ha)); !errors.Is(err, storectx.ErrPaused) {
		return fmt.Errorf("install of paused a: want PAUSED, got %v", err)
	}
	gc, err := task.Install(c, uintptr(hc))
	if err != nil {
		return err
	}
	nap()
	if n, _ := task.Depth(); n != 4 {
		return fmt.Errorf("depth %d, want 4 (a, a, b, c)", n)
	}
	if err := task.Uninstall(ga2); !errors.Is(err, storectx.ErrOutOfOrder) {
		return fmt.Errorf("uninstall of buried a: want OUT_OF_ORDER, got %v", err)
	}
	addr, bc, err := task.GetCurrent(c)
	if err != nil || addr != uintptr(hc) {
		return fmt.Errorf("get_current(c): %#x, %v", addr, err)
	}
	nap()
	if err := task.Uninstall(gc); !errors.Is(err, storectx.ErrStillBorrowed) {
		return fmt.Errorf("uninstall of borrowed c: want STILL_BORROWED, got %v", err)
	}
	if err := task.ReleaseBorrow(bc); err != nil {
		return err
	}
	if err := task.Uninstall(gc); err != nil {
		return err
	}
	nap()
	s, addr, bb, err := task.GetCurrentAsync(b)
	if err != nil || s == nil || s.ID() != b || addr != uintptr(hb) {
		return fmt.Errorf("get_current_async(b): %v %#x %v", s, addr, err)
	}
	s.Release()
	if err := task.ReleaseBorrow(bb); err != nil {
		return err
	}
	if _, err := sb.TryWrite(); !errors.Is(err, storectx.ErrBusy) {
		return fmt.Errorf("try_write while the task holds b: want BUSY, got %v", err)
	}
	if err := task.Uninstall(gb); err != nil {
		return err
	}
	w2, err := sb.TryWrite() // uninstalling b released its lock
	if err != nil {
		return fmt.Errorf("try_write after b was uninstalled: %v", err)
	}
	w2.Release()
	nap()
	for _, g := range []storectx.InstallGuard{ga2, ga} {
		if err := task.Uninstall(g); err != nil {
			return err
		}
	}
	if n, _ := task.Depth(); n != 0 {
		return fmt.Errorf("depth %d after unwinding", n)
	}
	return nil
}

// sharedCounter is an async store's state. Only the holder of the store's
// write lock touches n, with a thread hop between its read and its write:
// a second holder would lose an update.
type sharedCounter struct {
	holder atomic.Int64
	n      int
}

// Async stores shared by goroutines: each takes a store's lock through its
// task, installs it, sleeps (hops), checks it is still the current store and
// the only holder, bumps the counter, and uninstalls (unlocks). Every third
// round holds two stores at once, taken in id order.
func TestAsyncStoresSharedBetweenGoroutines(t *testing.T) {
	const stores, workers, rounds = 4, 32, 40
	ids := make([]storectx.StoreID, stores)
	counters := make([]*sharedCounter, stores)
	async := make([]*storectx.AsyncStore, stores)
	for i := range async {
		counters[i] = &sharedCounter{}
		h := cgo.NewHandle(counters[i])
		defer h.Delete()
		ids[i] = storectx.NewStoreID()
		s, err := storectx.NewAsyncStore(ids[i], uintptr(h))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Release()
		async[i] = s
	}
	var errs errorSink
	var twoHolders atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(me int64) {
			defer wg.Done()
			task := storectx.NewTask()
			defer task.Close()
			type held struct {
				k int
				g storectx.InstallGuard
				c *sharedCounter
				v int
			}
			for r := 0; r < rounds; r++ {
				ks := []int{int(me+int64(r)) % stores}
				if r%3 == 0 {
					ks = append(ks, (ks[0]+1)%stores)
					if ks[1] < ks[0] {
						ks[0], ks[1] = ks[1], ks[0]
					}
				}
				var hs []held
				for _, k := range ks {
					lock, err := task.Write(async[k], storectx.Forever)
					if err != nil {
						errs.add("write: %v", err)
						return
					}
					c := cgo.Handle(lock.Store()).Value().(*sharedCounter)
					g, err := task.InstallAsync(lock)
					if err != nil {
						errs.add("install_async: %v", err)
						return
					}
					if !c.holder.CompareAndSwap(0, me+1) {
						twoHolders.Add(1)
					}
					hs = append(hs, held{k, g, c, c.n})
				}
				time.Sleep(50 * time.Microsecond)
				top := hs[len(hs)-1]
				s, addr, b, err := task.GetCurrentAsync(ids[top.k])
				if err != nil || s.ID() != ids[top.k] || cgo.Handle(addr).Value().(*sharedCounter) != top.c {
					errs.add("after the sleep, get_current_async(%d): %v", ids[top.k], err)
					return
				}
				s.Release()
				if err := task.ReleaseBorrow(b); err != nil {
					errs.add("borrow_release: %v", err)
				}
				for i := len(hs) - 1; i >= 0; i-- {
					h := hs[i]
					h.c.n = h.v + 1
					if !h.c.holder.CompareAndSwap(me+1, 0) {
						twoHolders.Add(1)
					}
					if err := task.Uninstall(h.g); err != nil {
						errs.add("uninstall: %v", err)
						return
					}
				}
			}
		}(int64(w))
	}
	wg.Wait()
	errs.check(t)
	if n := twoHolders.Load(); n != 0 {
		t.Fatalf("%d times a store had two holders", n)
	}
	total := 0
	for _, c := range counters {
		total += c.n
	}
	want := workers * (rounds + (rounds+2)/3)
	if total != want {
		t.Fatalf("counters sum to %d, want %d: updates were lost", total, want)
	}
}

// Cancellation: a task abandoned with a write lock, a sync entry and a
// borrow still installed is closed from another goroutine; the lock is
// free again and the closed task's handles are refused.
func TestCloseReleasesWhatTheTaskHolds(t *testing.T) {
	s, _, _ := newAsyncStore(t)
	inner, hi := newStore(t)

	owner := storectx.NewTask()
	ready := make(chan storectx.InstallGuard)
	stuck := make(chan struct{})
	defer close(stuck)
	go func() {
		w, err := owner.Write(s, storectx.Forever)
		if err != nil {
			t.Error(err)
		}
		if _, err := owner.InstallAsync(w); err != nil {
			t.Error(err)
		}
		g, err := owner.Install(inner, hi)
		if err != nil {
			t.Error(err)
		}
		if _, _, err := owner.GetCurrent(inner); err != nil {
			t.Error(err)
		}
		ready <- g
		<-stuck // never resumes: the work was cancelled
	}()
	g := <-ready

	other := storectx.NewTask()
	defer other.Close()
	_, err := other.Write(s, 20*time.Millisecond)
	expectStatus(t, err, storectx.ErrTimedOut, "write while the owner holds the lock")
	_, err = s.TryWrite()
	expectStatus(t, err, storectx.ErrBusy, "try_write while the owner holds the lock")

	if err := owner.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := owner.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	w, err := other.Write(s, time.Second)
	if err != nil {
		t.Fatalf("write after the owner was closed: %v", err)
	}
	w.Release()
	err = owner.Uninstall(g)
	e := expectStatus(t, err, storectx.ErrStaleHandle, "uninstall through a closed task")
	if !strings.Contains(e.Message, "closed") {
		t.Fatalf("message does not say the task is closed: %q", e.Message)
	}
	err = other.Uninstall(g)
	expectStatus(t, err, storectx.ErrStaleHandle, "the closed task's guard through another task")
	_, err = other.GetCurrentTransient(inner)
	expectStatus(t, err, storectx.ErrNoContext, "lookup of the closed task's store")
}

// Close by the goroutine that pinned the task ends the pin and frees the
// entries on its thread.
func TestCloseWhilePinned(t *testing.T) {
	s, _, _ := newAsyncStore(t)
	done := make(chan error)
	go func() {
		task := storectx.NewTask()
		w, err := task.Write(s, storectx.Forever)
		if err == nil {
			_, err = task.InstallAsync(w)
		}
		if err == nil {
			err = task.Pin()
		}
		if err == nil && storectx.ThreadDepth() != 1 {
			err = fmt.Errorf("pinned, the thread holds %d entries, want 1", storectx.ThreadDepth())
		}
		if err == nil {
			err = task.Close()
		}
		if err == nil && storectx.ThreadDepth() != 0 {
			err = fmt.Errorf("closed, the thread holds %d entries", storectx.ThreadDepth())
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectLockFree(t, s, "the lock of a task closed while pinned is still taken")
}

// A task dropped without Close is closed by its finalizer: its lock is
// released once the collector has run.
func TestFinalizerReleasesAnAbandonedTask(t *testing.T) {
	s, _, _ := newAsyncStore(t)
	func() {
		installWrite(t, storectx.NewTask(), s, storectx.Forever)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if w, err := s.TryWrite(); err == nil {
			w.Release()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock of an abandoned task was never released")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
