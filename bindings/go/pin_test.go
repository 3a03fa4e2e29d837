// Tests of pinned mode and of Call: the task's entries stay on one thread
// for a stretch of Go code or a guest call, C code finds them there, and
// entries below the task's (another task's, pinned) are never removed.
package storectx_test

import (
	"errors"
	"runtime/cgo"
	"testing"

	"example.invalid/storectx"
	"example.invalid/storectx/internal/guest"
)

func TestPinKeepsTheEntriesOnTheThread(t *testing.T) {
	id, h := newStore(t)
	task := storectx.NewTask()
	defer task.Close()
	if _, err := task.Install(id, h); err != nil {
		t.Fatal(err)
	}
	if storectx.ThreadDepth() != 0 {
		t.Fatal("entries on the thread before Pin")
	}
	if err := task.Pin(); err != nil {
		t.Fatal(err)
	}
	if err := task.Pin(); err != nil { // pins nest
		t.Fatal(err)
	}
	if d := storectx.ThreadDepth(); d != 1 {
		t.Fatalf("pinned: thread depth %d, want 1", d)
	}
	// C code of any cgo package finds the store with the C API.
	arg := guest.NewProbeArg(uint64(id), h)
	defer arg.Free()
	if v, err := task.Call(guest.Probe, arg.Addr()); v != 0 || err != nil {
		t.Fatalf("guest probe while pinned: %d, %v", v, err)
	}
	// A second task used by the pinned goroutine stacks above the first.
	id2, h2 := newStore(t)
	task2 := storectx.NewTask()
	defer task2.Close()
	// task2 may look at the pinned store below its own entries...
	if _, err := task2.GetCurrentTransient(id); err != nil {
		t.Fatalf("task2 cannot see the pinned store: %v", err)
	}
	g2, err := task2.Install(id2, h2)
	if err != nil {
		t.Fatal(err)
	}
	if d := storectx.ThreadDepth(); d != 1 {
		t.Fatalf("task2 left entries on the pinned thread: depth %d", d)
	}
	if n, _ := task2.Depth(); n != 1 {
		t.Fatalf("task2 depth %d, want its own 1", n)
	}
	// ...which its own entry now pauses.
	_, err = task2.GetCurrentTransient(id)
	expectStatus(t, err, storectx.ErrPaused, "the pinned store under task2's entry")
	if err := task2.Uninstall(g2); err != nil {
		t.Fatal(err)
	}
	g, _, _, err := task.GetCurrentUnborrowed()
	if err != nil || g != id {
		t.Fatalf("unborrowed: %d %v", g, err)
	}
	expectStatus(t, task2.Uninstall(storectx.InstallGuard{}), storectx.ErrStaleHandle, "zero guard")
	if err := task.Unpin(); err != nil {
		t.Fatal(err)
	}
	if d := storectx.ThreadDepth(); d != 1 {
		t.Fatalf("after one of two Unpins: depth %d, want 1", d)
	}
	if err := task.Unpin(); err != nil {
		t.Fatal(err)
	}
	if d := storectx.ThreadDepth(); d != 0 {
		t.Fatalf("unpinned: thread depth %d, want 0", d)
	}
	if _, err := task.GetCurrentTransient(id); err != nil {
		t.Fatalf("carried again after Unpin: %v", err)
	}
}

func TestATaskNeverRemovesEntriesBelowItsOwn(t *testing.T) {
	id, h := newStore(t)
	outer := storectx.NewTask()
	defer outer.Close()
	g, err := outer.Install(id, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := outer.Pin(); err != nil {
		t.Fatal(err)
	}
	defer outer.Unpin()
	inner := storectx.NewTask()
	defer inner.Close()
	e := expectStatus(t, inner.Uninstall(g), storectx.ErrStaleHandle, "another task's entry below")
	if d := storectx.ThreadDepth(); d != 1 {
		t.Fatalf("the entry below was removed (depth %d): %v", d, e)
	}
	// A guest run by the inner task that pops it anyway is reported.
	_, err = inner.Call(guest.PopTop, uintptr(g.Raw()))
	expectStatus(t, err, storectx.ErrInvalidArgument, "a guest that removed an entry below its task")
}

func TestCallRunsTheGuestWithTheEntriesInstalled(t *testing.T) {
	id, h := newStore(t)
	task := storectx.NewTask()
	defer task.Close()
	arg := guest.NewProbeArg(uint64(id), h)
	defer arg.Free()
	if v, _ := task.Call(guest.Probe, arg.Addr()); v != int64(storectx.ErrNoContext) {
		t.Fatalf("the guest saw a store before Install: %d", v)
	}
	if _, err := task.Install(id, h); err != nil {
		t.Fatal(err)
	}
	if v, err := task.Call(guest.Probe, arg.Addr()); v != 0 || err != nil {
		t.Fatalf("guest probe: %d, %v", v, err)
	}
	if d := storectx.ThreadDepth(); d != 0 {
		t.Fatalf("Call left %d entries on the thread", d)
	}

	// A Go callback made by the guest runs on the same thread, inside the
	// call: it uses the task directly, and its entries are the task's.
	id2, h2 := newStore(t)
	var inside error
	cb := cgo.NewHandle(func() int64 {
		if d := storectx.ThreadDepth(); d != 1 {
			inside = errors.New("the callback's thread lacks the task's entry")
			return -1
		}
		g, err := task.Install(id2, h2)
		if err != nil {
			inside = err
			return -1
		}
		if v, err := task.Call(guest.Depth, 0); v != 2 || err != nil {
			inside = errors.New("nested Call does not see both entries")
		}
		if err := task.Uninstall(g); err != nil {
			inside = err
		}
		if err := task.Close(); !errors.Is(err, storectx.ErrBusy) {
			inside = errors.New("Close inside Call was not refused")
		}
		return 42
	})
	defer cb.Delete()
	v, err := task.Call(guest.Callback, uintptr(cb))
	if v != 42 || err != nil || inside != nil {
		t.Fatalf("callback: %d, %v, inside: %v", v, err, inside)
	}

	// Entries the guest leaves become the task's, and Close drops them.
	left := uintptr(storectx.NewStoreID())
	if _, err := task.Call(guest.InstallLeave, left); err != nil {
		t.Fatal(err)
	}
	if n, _ := task.Depth(); n != 2 {
		t.Fatalf("after the guest left an entry: depth %d, want 2", n)
	}
	if top, _ := task.ActiveStore(); uintptr(top) != left {
		t.Fatalf("top is %d, want the guest's %d", top, left)
	}
	text, err := task.Describe()
	if err != nil || text == "" {
		t.Fatalf("describe: %q %v", text, err)
	}
	t.Logf("the task's stack:\n%s", text)
}
