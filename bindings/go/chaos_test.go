// Many goroutines misusing shared tasks and stores at random: Pin/Unpin
// (also unbalanced), Call with callbacks that panic, Goexit, pin or use
// another task, Write (with passed deadlines) and TryWrite, Close while
// others use the task. Afterwards nothing may be left: every store's lock
// is free once every task is closed, and no thread keeps entries.
package storectx_test

import (
	"errors"
	"math/rand"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.invalid/storectx"
	"example.invalid/storectx/internal/guest"
)

// Statuses a misuse may get; anything else is a fault.
var chaosExpected = []storectx.Status{
	storectx.ErrBusy, storectx.ErrStaleHandle, storectx.ErrOutOfOrder, storectx.ErrTimedOut,
	storectx.ErrWouldDeadlock, storectx.ErrAlreadyOnStack, storectx.ErrInvalidArgument,
	storectx.ErrNotInstalled, storectx.ErrNoContext, storectx.ErrPaused, storectx.ErrStillBorrowed,
	storectx.ErrNotBorrowed, storectx.ErrBorrowed, storectx.ErrAddressMismatch, storectx.ErrNotSync,
}

func chaosOK(err error) bool {
	if err == nil {
		return true
	}
	for _, s := range chaosExpected {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func TestChaosLeavesNothingBehind(t *testing.T) {
	const (
		nTasks  = 6
		nStores = 3
		workers = 12
		steps   = 2000
	)
	stores := make([]*storectx.AsyncStore, nStores)
	for i := range stores {
		id, h := newStore(t)
		s, err := storectx.NewAsyncStore(id, h)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
		defer s.Release()
	}
	// Slots of tasks; a closed task is replaced by a new one.
	tasks := make([]atomic.Pointer[storectx.Task], nTasks)
	for i := range tasks {
		tasks[i].Store(storectx.NewTask())
	}
	var errs errorSink
	var okCalls, failed sync.Map // what -> *int64 (counts, for the log)
	count := func(m *sync.Map, what string) {
		v, _ := m.LoadOrStore(what, new(int64))
		atomic.AddInt64(v.(*int64), 1)
	}
	check := func(what string, err error) {
		if err == nil {
			count(&okCalls, what)
		} else {
			count(&failed, what)
		}
		if !chaosOK(err) {
			errs.add("%s: %v", what, err)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			var slot int
			pick := func() *storectx.Task { slot = rng.Intn(nTasks); return tasks[slot].Load() }
			var pinned []*storectx.Task
			defer func() {
				for i := len(pinned) - 1; i >= 0; i-- {
					_ = pinned[i].Unpin()
				}
			}()
			for step := 0; step < steps; step++ {
				task := pick()
				switch rng.Intn(10) {
				case 0:
					_, err := task.Install(storectx.NewStoreID(), 0x1000)
					check("Install", err)
				case 1:
					s := stores[rng.Intn(nStores)]
					timeouts := []time.Duration{0, -time.Second, 200 * time.Microsecond}
					g, err := task.Write(s, timeouts[rng.Intn(len(timeouts))])
					check("Write", err)
					if err == nil {
						if _, err := task.InstallAsync(g); err != nil {
							check("InstallAsync", err)
							g.Release()
						}
					}
				case 2:
					err := task.Pin()
					check("Pin", err)
					if err == nil {
						pinned = append(pinned, task)
					}
				case 3:
					if n := len(pinned); n > 0 {
						i := n - 1
						if rng.Intn(3) == 0 {
							i = rng.Intn(n) // out of order on purpose
						}
						err := pinned[i].Unpin()
						check("Unpin", err)
						if err == nil {
							pinned = append(pinned[:i], pinned[i+1:]...)
						}
					}
				case 4:
					if rng.Intn(4) == 0 {
						err := task.Close()
						check("Close", err)
						if err == nil {
							tasks[slot].CompareAndSwap(task, storectx.NewTask())
						}
					}
				case 5, 6:
					other := pick()
					how := rng.Intn(4)
					cb := cgo.NewHandle(func() int64 {
						_, err := other.Install(storectx.NewStoreID(), 0x2000)
						check("Install in callback", err)
						switch how {
						case 0:
							panic("chaos")
						case 1:
							if err := other.Pin(); err == nil {
								_ = other.Unpin()
							}
						case 2:
							_, err := other.Call(guest.Depth, 0)
							check("nested Call", err)
						}
						return 0
					})
					func() {
						defer func() { _ = recover() }()
						_, err := task.Call(guest.Callback, uintptr(cb))
						check("Call", err)
					}()
					cb.Delete()
				case 7:
					_, _, _, err := task.GetCurrentUnborrowed()
					check("GetCurrentUnborrowed", err)
				case 8:
					s := stores[rng.Intn(nStores)]
					if g, err := s.TryWrite(); err == nil {
						g.Release()
					}
				case 9:
					time.Sleep(time.Duration(rng.Intn(50)) * time.Microsecond)
				}
			}
		}(int64(w) + time.Now().UnixNano())
	}
	wg.Wait()
	report := func(name string, m *sync.Map) {
		m.Range(func(k, v any) bool {
			t.Logf("%s %s: %d", name, k, atomic.LoadInt64(v.(*int64)))
			return true
		})
	}
	report("ok", &okCalls)
	report("refused", &failed)
	errs.check(t)
	for i := range tasks {
		// A worker that ended with a task pinned (an Unpin refused) ended
		// locked to its thread: Go ends the thread, whose exit gives the
		// task back; wait for that (BUSY meanwhile).
		var err error
		for try := 0; try < 500; try++ {
			if err = tasks[i].Load().Close(); !errors.Is(err, storectx.ErrBusy) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("task %d: Close after every goroutine is done: %v", i, err)
		}
	}
	for i, s := range stores {
		g, err := s.TryWrite()
		if err != nil {
			t.Fatalf("store %d is still locked after every task closed: %v", i, err)
		}
		g.Release()
	}
	// No thread keeps entries: sample many goroutines on whatever threads.
	var left sync.WaitGroup
	var bad errorSink
	for i := 0; i < 200; i++ {
		left.Add(1)
		go func() {
			defer left.Done()
			runtime.Gosched()
			if d := storectx.ThreadDepth(); d != 0 {
				bad.add("a thread keeps %d entries", d)
			}
		}()
	}
	left.Wait()
	bad.check(t)
}
