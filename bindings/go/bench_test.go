// Benchmarks: the per-call cost of carrying a goroutine's entries (a Task:
// resume + operation + suspend in one cgo call) against the LockOSThread
// approach (the goroutine keeps its thread and calls the C API directly),
// for a call alone and for a call after a goroutine hand-off (a hop).
//
//	go test -run '^$' -bench . -benchtime 200ms
//
// TestCarryVsLockOSThread (with STORECTX_GO_BENCH=1) reports the ratios.
package storectx_test

import (
	"os"
	"runtime"
	"testing"

	"example.invalid/storectx"
	"example.invalid/storectx/internal/guest"
)

// One lookup (get_current_transient) by a goroutine whose task carries one
// entry: one cgo call that resumes, looks up and suspends.
func benchLookupCarry(b *testing.B) {
	task := storectx.NewTask()
	defer task.Close()
	id := storectx.NewStoreID()
	if _, err := task.Install(id, 0x1000); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := task.GetCurrentTransient(id); err != nil {
			b.Fatal(err)
		}
	}
}

// The same lookup through a pinned Task (its entries stay on the thread).
func benchLookupPinned(b *testing.B) {
	task := storectx.NewTask()
	defer task.Close()
	id := storectx.NewStoreID()
	if _, err := task.Install(id, 0x1000); err != nil {
		b.Fatal(err)
	}
	if err := task.Pin(); err != nil {
		b.Fatal(err)
	}
	defer task.Unpin()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := task.GetCurrentTransient(id); err != nil {
			b.Fatal(err)
		}
	}
}

// The same lookup by a goroutine locked to its thread, straight to C.
func benchLookupLocked(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	id := uint64(storectx.NewStoreID())
	g, s := guest.RawInstall(id, 0x1000)
	if s != 0 {
		b.Fatal(s)
	}
	defer guest.RawUninstall(g)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, s := guest.RawGetCurrentTransient(id); s != 0 {
			b.Fatal(s)
		}
	}
}

// A hop: two goroutines hand a token back and forth over unbuffered
// channels, and each does one lookup of its own store per turn. One op is
// one turn (a hand-off plus a lookup). Carried, a hand-off is a goroutine
// switch; locked, each goroutine owns a thread and every hand-off is an OS
// thread wake-up.
func benchHop(b *testing.B, locked bool) {
	ping, pong := make(chan struct{}), make(chan struct{})
	done := make(chan error, 2)
	side := func(in <-chan struct{}, out chan<- struct{}, first bool, n int) {
		var lookup func() error
		id := storectx.NewStoreID()
		if locked {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			g, _ := guest.RawInstall(uint64(id), 0x1000)
			defer guest.RawUninstall(g)
			lookup = func() error {
				if _, s := guest.RawGetCurrentTransient(uint64(id)); s != 0 {
					return storectx.Status(s)
				}
				return nil
			}
		} else {
			task := storectx.NewTask()
			defer task.Close()
			if _, err := task.Install(id, 0x1000); err != nil {
				done <- err
				return
			}
			lookup = func() error {
				_, err := task.GetCurrentTransient(id)
				return err
			}
		}
		for i := 0; i < n; i++ {
			if !first || i > 0 {
				<-in
			}
			if err := lookup(); err != nil {
				done <- err
				return
			}
			out <- struct{}{}
		}
		if first {
			<-in // the other side's last hand-off
		}
		done <- nil
	}
	b.ResetTimer()
	half := (b.N + 1) / 2
	go side(pong, ping, true, half)
	go side(ping, pong, false, half)
	for i := 0; i < 2; i++ {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	b.Run("carry", benchLookupCarry)
	b.Run("pinned", benchLookupPinned)
	b.Run("locked", benchLookupLocked)
}

func BenchmarkHop(b *testing.B) {
	b.Run("carry", func(b *testing.B) { benchHop(b, false) })
	b.Run("locked", func(b *testing.B) { benchHop(b, true) })
}

// TestCarryVsLockOSThread runs each pair five times, interleaved, keeps
// each one's fastest run (the machine may be shared) and reports the
// carry/locked ratios: above 1, carrying costs more per call; below 1,
// less. Only with STORECTX_GO_BENCH=1 (it takes a few seconds):
//
//	STORECTX_GO_BENCH=1 go test -run CarryVsLockOSThread -v -benchtime 200ms
func TestCarryVsLockOSThread(t *testing.T) {
	if os.Getenv("STORECTX_GO_BENCH") != "1" {
		t.Skip("set STORECTX_GO_BENCH=1 to run the carry vs LockOSThread comparison")
	}
	cases := []struct {
		name string
		f    func(*testing.B)
	}{
		{"call, carried", benchLookupCarry},
		{"call, pinned Task", benchLookupPinned},
		{"call, LockOSThread", benchLookupLocked},
		{"hop+call, carried", func(b *testing.B) { benchHop(b, false) }},
		{"hop+call, LockOSThread", func(b *testing.B) { benchHop(b, true) }},
	}
	best := make([]float64, len(cases))
	for round := 0; round < 5; round++ {
		for i, c := range cases {
			r := testing.Benchmark(c.f)
			if ns := float64(r.T.Nanoseconds()) / float64(r.N); round == 0 || ns < best[i] {
				best[i] = ns
			}
		}
	}
	t.Logf("GOMAXPROCS=%d, fastest of 5 runs each", runtime.GOMAXPROCS(0))
	for i, c := range cases {
		t.Logf("%-24s %8.0f ns", c.name, best[i])
	}
	t.Logf("call alone:         carry/locked = %.2f (pinned Task/locked = %.2f)", best[0]/best[2], best[1]/best[2])
	t.Logf("call after a hop:   carry/locked = %.3f (locked/carry = %.0f)", best[3]/best[4], best[4]/best[3])
}
