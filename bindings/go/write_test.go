// Tests of waiting for an async store's lock (Task.Write never holds the
// goroutine in one long cgo call) and of AsyncStore and WriteGuard objects
// released while another goroutine uses them (issue 19).
package storectx_test

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.invalid/storectx"
)

// goroutineState answers the scheduler state of the goroutine whose stack
// has frame in it ("syscall" while it is inside a cgo call, "sleep",
// "runnable", ...), or "" when there is none.
func goroutineState(frame string) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if !bytes.Contains(g, []byte(frame)) {
			continue
		}
		head, _, _ := strings.Cut(string(g), "\n") // goroutine 7 [syscall]:
		_, state, _ := strings.Cut(head, "[")
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",") // "[syscall, 2 minutes]"
		return state
	}
	return ""
}

// With GOMAXPROCS=1, goroutine W waits in Task.Write for a lock that the
// holder H releases only once it has seen W waiting in Go (parked or
// runnable inside Write, not inside a cgo call). A Write that waits inside
// one cgo call keeps the only P: H then runs only when the runtime's
// monitor takes the P away, and every time it looks W is in its cgo call,
// so H never releases and this test fails at its (generous) deadline.
func TestTimedWriteWaitsOnTheGoSide(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, timeout := range []time.Duration{time.Minute, storectx.Forever} {
		s, _, h := newAsyncStore(t)
		held, err := s.TryWrite()
		if err != nil {
			t.Fatal(err)
		}
		var seenWaiting atomic.Bool
		released := make(chan error, 1)
		go func() { // H: the holder
			deadline := time.Now().Add(30 * time.Second)
			for {
				switch goroutineState("storectx.(*Task).Write(") {
				case "", "syscall":
				default:
					seenWaiting.Store(true)
					held.Release()
					released <- nil
					return
				}
				if time.Now().After(deadline) {
					released <- errors.New("for 30 s, every look found the writer inside a cgo call " +
						"(or not started): the wait keeps the goroutine's P")
					held.Release() // let the writer end
					return
				}
				runtime.Gosched()
			}
		}()
		task := storectx.NewTask()
		w, err := task.Write(s, timeout) // W
		if rerr := <-released; rerr != nil {
			t.Fatalf("timeout %v: %v", timeout, rerr)
		}
		if err != nil {
			t.Fatalf("timeout %v: the Write that waited: %v", timeout, err)
		}
		if !seenWaiting.Load() || w.Store() != h {
			t.Fatalf("timeout %v: the guard names %#x, want %#x", timeout, w.Store(), h)
		}
		w.Release()
		task.Close()
		s.Release()
	}
}

// The semantics the Go-side wait keeps: timeout 0 tries once, a lock that
// stays taken ends in TIMED_OUT naming the store and the time waited, and a
// store the task itself holds is WOULD_DEADLOCK at once, not a wait.
func TestWriteTimeoutsAndDeadlock(t *testing.T) {
	s, _, _ := newAsyncStore(t)
	task := storectx.NewTask()
	defer task.Close()
	held, err := s.TryWrite()
	if err != nil {
		t.Fatal(err)
	}
	for _, timeout := range []time.Duration{0, 20 * time.Millisecond} {
		start := time.Now()
		_, err := task.Write(s, timeout)
		e := expectStatus(t, err, storectx.ErrTimedOut, "write of a held store")
		if waited := time.Since(start); waited < timeout {
			t.Fatalf("timeout %v: gave up after %v", timeout, waited)
		}
		if !strings.Contains(e.Message, "store") {
			t.Fatalf("timeout %v: the message does not name the store: %q", timeout, e.Message)
		}
	}
	held.Release()
	installWrite(t, task, s, 0)
	_, err = task.Write(s, storectx.Forever)
	expectStatus(t, err, storectx.ErrWouldDeadlock, "write of a store the task holds, waiting for ever")
}

// A Release of the only AsyncStore reference, on another goroutine, while
// a Write waits for its lock: the store is not freed under the Write (the
// Write holds its reference until it returns), and the Write ends with
// STALE_HANDLE instead of waiting on a store nobody refers to. The lock's
// holder then releases it with nothing freed twice.
func TestAsyncStoreReleasedDuringAWaitingWrite(t *testing.T) {
	s, _, h := newAsyncStore(t)
	held, err := s.TryWrite()
	if err != nil {
		t.Fatal(err)
	}
	task := storectx.NewTask()
	defer task.Close()
	done := make(chan error, 1)
	go func() {
		_, err := task.Write(s, time.Minute)
		done <- err
	}()
	for goroutineState("storectx.(*Task).Write(") == "" {
		time.Sleep(time.Millisecond)
	}
	s.Release()
	select {
	case err := <-done:
		e := expectStatus(t, err, storectx.ErrStaleHandle, "a Write whose AsyncStore was released meanwhile")
		if !strings.Contains(e.Message, "released") {
			t.Fatalf("the message does not say the store was released: %q", e.Message)
		}
	case <-time.After(30 * time.Second):
		held.Release()
		t.Fatalf("the Write went on waiting for 30 s on a store whose last reference was released")
	}
	if held.Store() != h {
		t.Fatalf("the holder's guard names %#x, want %#x", held.Store(), h)
	}
	held.Release()
}

// Many goroutines use one AsyncStore (and the WriteGuards it gives) while
// others release them: every call works or is refused as released, under
// the race detector, and each C object is released exactly once (a second
// release of the same C reference would abort or corrupt the process).
func TestAsyncStoreAndGuardsUsedWhileReleased(t *testing.T) {
	const rounds = 300
	for r := 0; r < rounds; r++ {
		s, id, _ := newAsyncStore(t)
		task := storectx.NewTask()
		var wg sync.WaitGroup
		var bad atomic.Value
		wg.Add(5)
		go func() { // writer through a task
			defer wg.Done()
			w, err := task.Write(s, time.Millisecond)
			if err == nil {
				w.Release()
			} else if !errors.Is(err, storectx.ErrStaleHandle) && !errors.Is(err, storectx.ErrTimedOut) {
				bad.Store(err)
			}
		}()
		go func() { // try_write, and a guard released twice at once
			defer wg.Done()
			w, err := s.TryWrite()
			if err != nil {
				if !errors.Is(err, storectx.ErrStaleHandle) && !errors.Is(err, storectx.ErrBusy) {
					bad.Store(err)
				}
				return
			}
			var inner sync.WaitGroup
			inner.Add(2)
			go func() { defer inner.Done(); _ = w.Store(); w.Release() }()
			go func() { defer inner.Done(); w.Release(); _ = w.Store() }()
			inner.Wait()
		}()
		go func() { // id and clone
			defer wg.Done()
			if got := s.ID(); got != 0 && got != id {
				bad.Store(errors.New("ID answered another store"))
			}
			if c := s.Clone(); c != nil {
				c.Release()
			}
		}()
		go func() { defer wg.Done(); s.Release() }()
		go func() { defer wg.Done(); s.Release() }()
		wg.Wait()
		if v := bad.Load(); v != nil {
			t.Fatalf("round %d: %v", r, v)
		}
		if s.ID() != 0 {
			t.Fatalf("round %d: a released AsyncStore answers its id", r)
		}
		task.Close()
	}
}
