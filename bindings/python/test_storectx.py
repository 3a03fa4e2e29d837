"""Tests of the Python ctypes binding (bindings/python/storectx.py).

Run:  STORECTX_LIB=target/debug/libstorectx.so python3 bindings/python/test_storectx.py
Exits non-zero when a test fails (or the library cannot be loaded).

Covers: nested cross-store calls with ctypes buffers as stores; misuse answered
by the right status (out-of-order, stale, zeroed and wrong-kind handles, NULL
out-pointers); a coroutine suspended on one threading.Thread and resumed on
another; async store write locks (BUSY, TIMED_OUT, WOULD_DEADLOCK); and the
docs/python.md and docs/thread-pools.md snippets, which are run verbatim from the strings
below.
"""

import contextlib
import ctypes
import io
import os
import queue
import re
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import storectx  # noqa: E402
from storectx import Status, StoreCtxError  # noqa: E402

JOIN_TIMEOUT = 10.0

# The docs/python.md "Use it from Python" snippets, verbatim (same lines as there).
README_NESTED = '''\
import ctypes
import storectx  # finds libstorectx next to itself, else on the loader path

store1 = ctypes.create_string_buffer(b"store one")  # your engine's store objects
store2 = ctypes.create_string_buffer(b"store two")
id1, id2 = storectx.store_id_new(), storectx.store_id_new()

with storectx.installed(id1, ctypes.addressof(store1)):      # call(store1, f1)
    with storectx.installed(id2, ctypes.addressof(store2)):  # -> import -> call(store2, f2)
        with storectx.borrowed(id2) as current:              # -> import uses store2
            assert ctypes.string_at(current.address) == b"store two"
        try:
            storectx.get_current(id1)                        # store1 is paused here
        except storectx.StoreCtxError as err:
            assert err.status == storectx.Status.PAUSED
            print(err)  # STORECTX_ERR_PAUSED: get_current: ...
        print(storectx.describe(), end="")  # one line per entry, top first
assert storectx.is_empty()
'''

README_THREADS = '''\
import ctypes
import threading
import storectx

store = ctypes.create_string_buffer(b"coroutine store")
sid = storectx.store_id_new()
parked = []

def first_poll():  # the coroutine starts on one thread...
    base = storectx.depth()
    guard = storectx.install(sid, ctypes.addressof(store))
    parked.append((storectx.suspend(base), guard))  # ...and yields

def second_poll():  # ...and is resumed on another
    segment, guard = parked.pop()
    segment.resume()
    assert storectx.get_current_transient(sid) == ctypes.addressof(store)
    guard.uninstall()  # handles stay valid across the move

for poll in (first_poll, second_poll):
    thread = threading.Thread(target=poll)
    thread.start()
    thread.join()
'''


# The docs/thread-pools.md Python snippet, verbatim.
README_POOL = '''\
import ctypes
from concurrent.futures import ThreadPoolExecutor
import storectx

store = ctypes.create_string_buffer(b"task store")
sid = storectx.store_id_new()

class Task:  # one unit of your app's work; its entries live here between work items
    def __init__(self):
        self.entries = storectx.suspend(storectx.depth())  # an empty segment
        self.guard = None

def work_item(task, step):  # on whichever pool thread is free
    base = task.entries.resume()  # the task's entries, on top of this thread
    try:
        if step == 0:
            task.guard = storectx.install(sid, ctypes.addressof(store))
        assert storectx.get_current_transient(sid) == ctypes.addressof(store)
        if step == 2:
            task.guard.uninstall()
    finally:
        task.entries = storectx.suspend(base)  # they leave before the thread is reused
    return storectx.is_empty()

task = Task()
with ThreadPoolExecutor(max_workers=2) as pool:
    for step in range(3):
        assert pool.submit(work_item, task, step).result()
task.entries.free()
'''

def run_in_thread(fn, *args):
    """Run fn(*args) on a new threading.Thread; return its result or re-raise."""
    result = {}

    def body():
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # noqa: B902 -- handed to the caller
            result["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(JOIN_TIMEOUT)
    if thread.is_alive():
        raise AssertionError("thread running %s did not finish" % fn.__name__)
    if "error" in result:
        raise result["error"]
    return result.get("value")


class StoreCtxTestCase(unittest.TestCase):
    def setUp(self):
        self.assertTrue(storectx.is_empty(), "stack not empty before test:\n" + storectx.describe())

    def tearDown(self):
        if not storectx.is_empty():
            # Drop what a failed test left (detach everything, then cancel it) so
            # the next test starts clean, and report it.
            left = storectx.describe()
            storectx.suspend(0).free()
            self.fail("test left entries on the stack:\n" + left)

    def assertStatus(self, status, fn, *args):
        """fn(*args) must raise StoreCtxError with this status and a message."""
        with self.assertRaises(StoreCtxError) as cm:
            fn(*args)
        err = cm.exception
        self.assertEqual(err.status, status, str(err))
        self.assertIsInstance(err.status, Status)
        self.assertEqual(err.name, status.c_name)
        self.assertTrue(err.message, "empty last_error for %s" % err.name)
        return err

    def assertRawStatus(self, status, got):
        self.assertEqual(got, status, "got %s, last_error: %s"
                         % (storectx.status_str(got), storectx.last_error()))


def buffer(text):
    buf = ctypes.create_string_buffer(text)
    return buf, ctypes.addressof(buf)


class Basics(StoreCtxTestCase):
    def test_version_and_empty_state(self):
        self.assertRegex(storectx.version(), r"^\d+\.\d+\.\d+$")
        major, minor = (int(p) for p in storectx.version().split(".")[:2])
        self.assertEqual((major, minor)[: 2 if major == 0 else 1],
                         storectx.ABI_VERSION[: 2 if major == 0 else 1])
        self.assertEqual(storectx.depth(), 0)
        self.assertEqual(storectx.active_store(), 0)
        self.assertEqual(storectx.describe(), "")

    def test_describe_truncates_like_snprintf(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.installed(sid, addr):
            text = storectx.describe()
            self.assertTrue(text.startswith("depth 1: store %d at 0x" % sid), text)
            self.assertIn("sync borrows 0", text)
            need = storectx.lib.storectx_describe(None, 0)
            self.assertEqual(need, len(text.encode()))
            small = ctypes.create_string_buffer(b"#" * 7)  # 8 bytes
            self.assertEqual(storectx.lib.storectx_describe(small, 5), need)
            self.assertEqual(small.raw[:5], text.encode()[:4] + b"\0")
            self.assertEqual(small.raw[5:], b"##\0")  # untouched past len

    def test_store_ids_are_unique_and_nonzero(self):
        ids = [storectx.store_id_new() for _ in range(100)]
        self.assertNotIn(0, ids)
        self.assertEqual(len(set(ids)), len(ids))

    def test_status_enum_mirrors_c_names(self):
        for status in Status:
            self.assertTrue(storectx.status_str(status).startswith(status.c_name),
                            "%r -> %r" % (status, storectx.status_str(status)))
        self.assertTrue(storectx.status_str(12345))  # never NULL, also for unknown values


class NestedCalls(StoreCtxTestCase):
    def test_nested_cross_store_calls(self):
        buf1, addr1 = buffer(b"store one")
        buf2, addr2 = buffer(b"store two")
        id1, id2 = storectx.store_id_new(), storectx.store_id_new()

        with storectx.installed(id1, addr1) as g1:                 # call(store1, f1)
            self.assertTrue(g1.installed)
            self.assertTrue(storectx.is_active(id1))
            with storectx.borrowed(id1) as b1:                     # import borrows store1
                self.assertEqual(b1.address, addr1)
                self.assertEqual(ctypes.string_at(b1.address), b"store one")
                with storectx.paused(id1):                         # ...while guest runs
                    with storectx.installed(id2, addr2):           # call(store2, f2)
                        self.assertEqual(storectx.depth(), 2)
                        self.assertEqual(storectx.active_store(), id2)
                        self.assertTrue(storectx.is_paused(id1))
                        self.assertFalse(storectx.is_active(id1))
                        with storectx.borrowed(id2) as b2:         # inner import
                            self.assertEqual(b2.address, addr2)
                            self.assertEqual(ctypes.string_at(b2.address), b"store two")
                            err = self.assertStatus(Status.PAUSED, storectx.get_current, id1)
                            self.assertTrue(err.message.startswith("get_current"), err.message)
                            self.assertStatus(Status.PAUSED, storectx.get_current_transient, id1)
                            self.assertStatus(Status.PAUSED, storectx.pause, id1)
                            self.assertStatus(Status.PAUSED, storectx.install, id1, addr1)
                            self.assertEqual(storectx.get_current_transient(id2), addr2)
                            lines = storectx.describe().splitlines()
                            self.assertEqual(len(lines), 2, lines)
                            self.assertIn("store %d " % id2, lines[0] + " ")
                            self.assertIn("store %d " % id1, lines[1] + " ")
                            self.assertIn("sync", lines[0])
                    self.assertFalse(storectx.is_paused(id1))
                    self.assertEqual(storectx.active_store(), id1)
        self.assertFalse(g1.installed)

    def test_lookup_statuses(self):
        buf, addr = buffer(b"s")
        sid, other = storectx.store_id_new(), storectx.store_id_new()
        self.assertStatus(Status.NO_CONTEXT, storectx.get_current, sid)
        self.assertStatus(Status.NO_CONTEXT, storectx.pause, sid)
        self.assertStatus(Status.INVALID_ARGUMENT, storectx.install, 0, addr)
        with storectx.installed(sid, addr):
            self.assertStatus(Status.NOT_INSTALLED, storectx.get_current, other)
            self.assertStatus(Status.INVALID_ARGUMENT, storectx.get_current, 0)

    def test_same_store_nested_and_address_mismatch(self):
        buf, addr = buffer(b"s")
        elsewhere, addr_b = buffer(b"t")
        sid = storectx.store_id_new()
        with storectx.installed(sid, addr):
            with storectx.installed(sid, addr):  # nested call on the same store
                self.assertEqual(storectx.depth(), 2)
                self.assertTrue(storectx.is_active(sid))
            self.assertStatus(Status.ADDRESS_MISMATCH, storectx.install, sid, addr_b)
            self.assertEqual(storectx.depth(), 1)

    def test_unborrowed_clone_and_borrowed(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.installed(sid, addr):
            with storectx.get_current_unborrowed() as b:
                self.assertEqual((b.store_id, b.address), (sid, addr))
                self.assertStatus(Status.BORROWED, storectx.get_current_unborrowed)
                with b.clone() as b2:
                    self.assertEqual(b2.address, addr)
            with storectx.get_current_async(sid) as b:
                self.assertIsNone(b.async_store)  # a sync entry
                self.assertEqual(b.address, addr)


class Misuse(StoreCtxTestCase):
    def test_out_of_order_uninstall(self):
        buf1, addr1 = buffer(b"one")
        buf2, addr2 = buffer(b"two")
        g1 = storectx.install(storectx.store_id_new(), addr1)
        g2 = storectx.install(storectx.store_id_new(), addr2)
        err = self.assertStatus(Status.OUT_OF_ORDER, g1.uninstall)
        self.assertTrue(err.message.startswith("uninstall:"), err.message)
        self.assertIn("uninstall", str(err))
        self.assertEqual(storectx.depth(), 2)  # a failed call changes nothing
        g2.uninstall()
        g1.uninstall()

    def test_stale_handles(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        g = storectx.install(sid, addr)
        b = storectx.get_current(sid)
        b.release()
        self.assertStatus(Status.NOT_BORROWED, b.release)
        g.uninstall()
        self.assertFalse(g.installed)
        self.assertStatus(Status.STALE_HANDLE, g.uninstall)  # used twice, empty stack
        self.assertStatus(Status.STALE_HANDLE, b.release)
        with storectx.installed(storectx.store_id_new(), addr):
            self.assertStatus(Status.STALE_HANDLE, g.uninstall)  # used twice, other entry
            zeroed = storectx.InstallGuard(storectx.InstallGuardHandle(), sid)
            self.assertStatus(Status.STALE_HANDLE, zeroed.uninstall)
            self.assertRawStatus(Status.STALE_HANDLE,
                                 storectx.lib.storectx_unpause(storectx.PauseGuardHandle()))

    def test_wrong_kind_of_handle(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.installed(sid, addr) as g:
            with storectx.borrowed(sid) as b:
                as_install = storectx.InstallGuardHandle(b.handle.raw)
                self.assertRawStatus(Status.STALE_HANDLE, storectx.lib.storectx_uninstall(as_install))
                as_borrow = storectx.BorrowHandle(g.handle.raw)
                self.assertRawStatus(Status.STALE_HANDLE,
                                     storectx.lib.storectx_borrow_release(as_borrow))
                self.assertEqual(storectx.depth(), 1)

    def test_still_borrowed(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.installed(sid, addr) as g:
            with storectx.borrowed(sid):
                self.assertStatus(Status.STILL_BORROWED, g.uninstall)
                self.assertTrue(g.installed)

    def test_null_out_pointers(self):
        lib = storectx.lib
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        self.assertRawStatus(Status.NULL_ARGUMENT, lib.storectx_install(sid, addr, None))
        self.assertTrue(storectx.last_error().startswith("install"), storectx.last_error())
        self.assertRawStatus(Status.NULL_ARGUMENT, lib.storectx_install(sid, None, None))
        self.assertStatus(Status.NULL_ARGUMENT, storectx.install, sid, None)  # NULL store
        self.assertStatus(Status.NULL_ARGUMENT, storectx.AsyncStore, sid, None)
        self.assertTrue(storectx.is_empty())
        with storectx.installed(sid, addr):
            out = storectx.BorrowHandle()
            self.assertRawStatus(Status.NULL_ARGUMENT, lib.storectx_get_current(sid, None, ctypes.byref(out)))
            store = ctypes.c_void_p()
            self.assertRawStatus(Status.NULL_ARGUMENT, lib.storectx_get_current(sid, ctypes.byref(store), None))
            self.assertIsNone(store.value)  # out-params untouched
            self.assertEqual(out.raw, 0)
            self.assertRawStatus(Status.NULL_ARGUMENT, lib.storectx_pause(sid, None))
            self.assertRawStatus(Status.NULL_ARGUMENT, lib.storectx_suspend(0, None))
            self.assertEqual(storectx.depth(), 1)
        self.assertRawStatus(Status.NULL_ARGUMENT, lib.storectx_async_store_try_write(None, None))

    def test_pause_guards_nest_lifo(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.installed(sid, addr), storectx.borrowed(sid):
            outer = storectx.pause(sid)
            inner = storectx.pause(sid)
            self.assertStatus(Status.OUT_OF_ORDER, outer.unpause)
            inner.unpause()
            self.assertStatus(Status.STALE_HANDLE, inner.unpause)
            outer.unpause()

    def test_suspend_base_above_depth(self):
        self.assertStatus(Status.INVALID_ARGUMENT, storectx.suspend, 1)
        seg = storectx.suspend(0)  # base == depth: an empty segment
        self.assertEqual(len(seg), 0)
        self.assertEqual(seg.resume(), 0)
        self.assertRaises(ValueError, seg.resume)  # consumed


class Threads(StoreCtxTestCase):
    def test_suspend_on_one_thread_resume_on_another(self):
        buf1, addr1 = buffer(b"sync store")
        buf2, addr2 = buffer(b"async store")
        id1, id2 = storectx.store_id_new(), storectx.store_id_new()
        astore = storectx.AsyncStore(id2, addr2)
        handoff = queue.Queue()

        def first_poll():
            base = storectx.depth()
            g1 = storectx.install(id1, addr1)
            b1 = storectx.get_current(id1)
            p1 = storectx.pause(id1)
            g2 = astore.write(timeout=5).install()
            b2 = storectx.get_current(id2)
            seg = storectx.suspend(base)
            self.assertEqual(len(seg), 2)
            self.assertTrue(storectx.is_empty())
            # the entries left this thread: their handles are stale here
            self.assertStatus(Status.STALE_HANDLE, b2.release)
            self.assertStatus(Status.STALE_HANDLE, g1.uninstall)
            self.assertStatus(Status.NO_CONTEXT, storectx.get_current, id2)
            handoff.put((seg, g1, b1, p1, g2, b2))

        run_in_thread(first_poll)
        seg, g1, b1, p1, g2, b2 = handoff.get_nowait()
        # the segment still holds the write lock while parked
        self.assertStatus(Status.BUSY, astore.try_write)

        def second_poll():
            self.assertTrue(storectx.is_empty())  # a thread the library never saw
            base = seg.resume()
            self.assertEqual(base, 0)
            self.assertFalse(seg.pending)
            self.assertEqual(storectx.depth(), 2)
            self.assertEqual(storectx.active_store(), id2)
            self.assertTrue(storectx.is_paused(id1))
            self.assertEqual(storectx.get_current_transient(id2), addr2)
            self.assertStatus(Status.PAUSED, storectx.get_current, id1)
            self.assertStatus(Status.OUT_OF_ORDER, g1.uninstall)
            b2.release()                        # handles made on the first thread
            g2.uninstall()                      # unlocks the async store
            self.assertTrue(g1.installed)
            p1.unpause()
            self.assertEqual(ctypes.string_at(b1.address), b"sync store")
            b1.release()
            g1.uninstall()
            self.assertTrue(storectx.is_empty())

        run_in_thread(second_poll)
        with astore.try_write() as w:
            self.assertEqual(w.store, addr2)
        astore.close()

    def test_handles_are_stale_on_another_thread(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.installed(sid, addr) as g, storectx.borrowed(sid) as b:
            def elsewhere():
                self.assertStatus(Status.STALE_HANDLE, g.uninstall)
                self.assertStatus(Status.STALE_HANDLE, b.release)
                self.assertStatus(Status.NO_CONTEXT, storectx.get_current, sid)
                self.assertFalse(g.installed)
            run_in_thread(elsewhere)
            self.assertTrue(g.installed)

    def test_resume_refused_when_store_already_on_stack(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()

        def park():
            storectx.install(sid, addr)
            return storectx.suspend(0)

        seg = run_in_thread(park)
        with storectx.installed(sid, addr):
            self.assertStatus(Status.ALREADY_ON_STACK, seg.resume)
            self.assertTrue(seg.pending)
            self.assertEqual(len(seg), 1)
            self.assertEqual(storectx.depth(), 1)
        seg.free()  # a cancelled coroutine
        self.assertFalse(seg.pending)
        self.assertEqual(len(seg), 0)

    def test_freeing_a_segment_releases_its_write_lock(self):
        buf, addr = buffer(b"s")
        with storectx.AsyncStore(storectx.store_id_new(), addr) as astore:
            def park():
                astore.try_write().install()
                return storectx.suspend(0)

            seg = run_in_thread(park)
            self.assertStatus(Status.BUSY, astore.try_write)
            seg.free()
            astore.try_write().release()

    def test_wasmer_style_unlock_on_yield_relock_on_resume(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.AsyncStore(sid, addr) as astore:
            def poll():
                with astore.write(timeout=5).install():
                    with storectx.borrowed(sid) as b:
                        self.assertEqual(b.address, addr)
                # uninstalled on yield: the lock is free for the next poller
            run_in_thread(poll)
            run_in_thread(poll)


    def test_thread_exit_releases_write_locks(self):
        buf, addr = buffer(b"s")
        with storectx.AsyncStore(storectx.store_id_new(), addr) as astore:
            def leave_entries_behind():
                astore.try_write().install()
                storectx.install(storectx.store_id_new(), addr)
                self.assertEqual(storectx.depth(), 2)

            run_in_thread(leave_entries_behind)
            # Thread.join() returns before the OS thread runs its TLS destructors,
            # so wait for the lock instead of trying once.
            astore.write(timeout=5).release()


class AsyncStores(StoreCtxTestCase):
    def test_try_write_busy_and_write_timeout(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.AsyncStore(sid, addr) as astore:
            self.assertEqual(astore.id, sid)
            guard = astore.try_write()
            self.assertTrue(guard.owned)
            self.assertEqual(guard.store, addr)
            self.assertStatus(Status.BUSY, astore.try_write)
            self.assertStatus(Status.TIMED_OUT, astore.write, 0)
            self.assertStatus(Status.TIMED_OUT, astore.write, 0.02)
            run_in_thread(self.assertStatus, Status.BUSY, astore.try_write)

            # a writer on another thread waits until the guard is released
            took = threading.Event()

            def waiter():
                with astore.write(timeout=5):
                    took.set()

            thread = threading.Thread(target=waiter)
            thread.start()
            self.assertFalse(took.wait(0.05))
            guard.release()
            self.assertFalse(guard.owned)
            thread.join(JOIN_TIMEOUT)
            self.assertFalse(thread.is_alive())
            self.assertTrue(took.is_set())
            guard.release()  # idempotent
            astore.try_write().release()

    def test_write_guard_released_on_another_thread(self):
        buf, addr = buffer(b"s")
        with storectx.AsyncStore(storectx.store_id_new(), addr) as astore:
            guard = astore.try_write()
            run_in_thread(guard.release)
            astore.try_write().release()

    def test_install_async_entry(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.AsyncStore(sid, addr) as astore:
            wg = astore.try_write()
            with wg.install() as g:
                self.assertFalse(wg.owned)  # consumed by the entry
                self.assertIsNone(wg.store)
                self.assertTrue(g.installed)
                self.assertEqual(g.store_id, sid)
                self.assertStatus(Status.WOULD_DEADLOCK, astore.write, 0)
                self.assertStatus(Status.WOULD_DEADLOCK, astore.write, None)
                with storectx.get_current_async(sid) as b:
                    self.assertEqual(b.address, addr)
                    self.assertIsNotNone(b.async_store)
                    self.assertEqual(b.async_store.id, sid)
                    b.async_store.close()
                    self.assertStatus(Status.NOT_SYNC, b.clone)
                with storectx.installed(sid, addr) as noop:  # sync call on the async top
                    self.assertFalse(noop.installed)
                    self.assertEqual(storectx.depth(), 1)
            self.assertFalse(g.installed)
            astore.try_write().release()  # uninstall unlocked it

    def test_install_async_refused_keeps_write_guard(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.AsyncStore(sid, addr) as first, storectx.AsyncStore(sid, addr) as second:
            with first.try_write().install():
                wg = second.try_write()  # another lock, same store id
                self.assertStatus(Status.ALREADY_ON_STACK, wg.install)
                self.assertTrue(wg.owned)  # not consumed: still ours to release
                self.assertEqual(storectx.depth(), 1)
                wg.release()

    def test_garbage_collected_owners_release(self):
        buf, addr = buffer(b"s")
        astore = storectx.AsyncStore(storectx.store_id_new(), addr)
        astore.try_write()  # dropped at once: __del__ unlocks
        astore.try_write().install()
        storectx.suspend(0)  # a dropped segment is freed, which unlocks
        self.assertTrue(storectx.is_empty())
        astore.try_write().release()
        del astore  # __del__ drops the reference

    def test_clone_close_and_keep_alive(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        astore = storectx.AsyncStore(sid, addr)
        other = astore.clone()
        self.assertEqual(other.id, sid)
        guard = astore.try_write()
        astore.close()
        astore.close()  # idempotent
        self.assertTrue(astore.closed)
        self.assertRaises(ValueError, astore.try_write)
        other.close()
        self.assertEqual(guard.store, addr)  # the guard keeps the store alive
        guard.release()


class Readme(StoreCtxTestCase):
    def run_snippet(self, name, source):
        out = io.StringIO()
        errors = []
        old_hook = threading.excepthook
        threading.excepthook = errors.append
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(source, name, "exec"), {"__name__": name})
        finally:
            threading.excepthook = old_hook
        self.assertEqual(errors, [], "exception in a snippet thread: %r"
                         % [e.exc_value for e in errors])
        return out.getvalue()

    def test_readme_nested_snippet(self):
        text = self.run_snippet("readme_nested", README_NESTED)
        lines = text.splitlines()
        self.assertEqual(len(lines), 3, text)
        self.assertTrue(lines[0].startswith("STORECTX_ERR_PAUSED: get_current"), text)
        self.assertTrue(re.match(r"depth \d+: store \d+ ", lines[1]), text)

    def test_readme_threads_snippet(self):
        self.run_snippet("readme_threads", README_THREADS)

    def test_readme_pool_snippet(self):
        self.run_snippet("readme_pool", README_POOL)

    def test_docs_show_these_snippets(self):
        docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")

        def blocks_of(page):
            try:
                with open(os.path.join(docs, page), encoding="utf-8") as f:
                    return re.findall(r"```python\n(.*?)```", f.read(), re.S)
            except OSError:
                self.skipTest("no docs/%s next to bindings/" % page)

        python = blocks_of("python.md")
        self.assertIn(README_NESTED, python, "docs/python.md's snippet differs from README_NESTED")
        self.assertIn(README_THREADS, python, "docs/python.md's snippet differs from README_THREADS")
        self.assertIn(README_POOL, blocks_of("thread-pools.md"),
                      "docs/thread-pools.md's snippet differs from README_POOL")

if __name__ == "__main__":
    unittest.main(verbosity=2)
