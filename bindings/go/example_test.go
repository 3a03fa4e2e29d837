package storectx_test

import (
	"errors"
	"fmt"
	"runtime/cgo"
	"time"

	"example.invalid/storectx"
)

// Engine stands for an embedder's store object, owned by Go.
type Engine struct{ name string }

// README Go begins
func Example() {
	task := storectx.NewTask() // one per goroutine; its entries follow it
	defer task.Close()         // drops what is left, releases locks

	engine := &Engine{name: "engine-1"}
	h := cgo.NewHandle(engine) // C keeps a handle, never a Go pointer
	defer h.Delete()
	id := storectx.NewStoreID()

	g, err := task.Install(id, uintptr(h))
	if err != nil {
		panic(err)
	}
	time.Sleep(time.Millisecond) // may wake on another OS thread

	addr, b, err := task.GetCurrent(id) // still this goroutine's store
	if err != nil {
		panic(err)
	}
	fmt.Println(cgo.Handle(addr).Value().(*Engine).name)
	if err := task.ReleaseBorrow(b); err != nil {
		panic(err)
	}
	if err := task.Uninstall(g); err != nil {
		panic(err)
	}

	_, err = task.GetCurrentTransient(id)
	fmt.Println(errors.Is(err, storectx.ErrNoContext))
	// Output:
	// engine-1
	// true
}

// README Go ends

// README Go pinned begins
func ExampleTask_Pin() {
	task := storectx.NewTask()
	defer task.Close()
	if _, err := task.Install(storectx.NewStoreID(), 0x1000); err != nil {
		panic(err)
	}
	fmt.Println("entries on this thread:", storectx.ThreadDepth())

	if err := task.Pin(); err != nil { // LockOSThread + resume
		panic(err)
	}
	// Long guest work: cgo calls of any package now find the store with
	// the C API (storectx_get_current), without going through the task.
	fmt.Println("entries on this thread:", storectx.ThreadDepth())
	if err := task.Unpin(); err != nil { // suspend + UnlockOSThread
		panic(err)
	}
	fmt.Println("entries on this thread:", storectx.ThreadDepth())
	// Output:
	// entries on this thread: 0
	// entries on this thread: 1
	// entries on this thread: 0
}

// README Go pinned ends
