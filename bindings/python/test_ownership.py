"""Ownership of C references by the Python binding: copies, pickles, and
objects used on one thread while another closes them.

Run:  STORECTX_LIB=target/debug/libstorectx.so python3 bindings/python/test_ownership.py
(``cargo test --features testing --test python_binding`` runs it, and runs it
again under valgrind's memcheck when valgrind is installed).

Every binding object that owns a C reference or handle either makes its own
reference when copied (``copy.copy(AsyncStore)`` is a ``clone()``) or
refuses with a TypeError naming the object and why; pickling never carries
a C pointer or handle out of the process. A method holds the object's
reference for the whole C call: ``close()`` / ``release()`` / ``free()`` on
another thread while the call runs drops the reference only when the call
has returned.

``Ledger`` stands in for ``storectx.lib`` and keeps the books of every C
reference the binding holds (async stores, write guards, segments): a call
on a reference nobody holds, a release of a reference that no longer
exists, or a release of the last reference while another call on it is in
flight is recorded (and not passed on to C, so that the test fails instead
of reading freed memory; STORECTX_LEDGER_FORWARD=1 passes it on, for
valgrind to see).
"""

import copy
import ctypes
import os
import pickle
import signal
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import storectx  # noqa: E402
from storectx import Status, StoreCtxError  # noqa: E402
from test_storectx import JOIN_TIMEOUT, StoreCtxTestCase, buffer, run_in_thread  # noqa: E402


#: STORECTX_LEDGER_FORWARD=1: record violations but still pass the call on to C
#: (under valgrind, to see what the call would really do to freed memory).
FORWARD = os.environ.get("STORECTX_LEDGER_FORWARD") == "1"


def _ptr(arg):
    if isinstance(arg, ctypes.c_void_p):
        return arg.value
    return arg


def _out(arg):
    """The c_void_p behind ctypes.byref(x)."""
    return getattr(arg, "_obj", arg).value


class Ledger:
    """Forwards to the real library; books every C reference (see module doc)."""

    # function -> (kind, where the new reference is: "ret" or an out-arg index)
    MAKES = {
        "storectx_async_store_new": ("store", 2),
        "storectx_async_store_clone": ("store", "ret"),
        "storectx_get_current_async": ("store", 1),
        "storectx_async_store_try_write": ("guard", 1),
        "storectx_async_store_write": ("guard", 2),
        "storectx_suspend": ("segment", 1),
    }
    # function -> (kind, consumed only when the call answers OK)
    ENDS = {
        "storectx_async_store_release": ("store", False),
        "storectx_write_guard_release": ("guard", False),
        "storectx_suspended_free": ("segment", False),
        "storectx_install_async": ("guard", True),
        "storectx_resume": ("segment", True),
    }
    USES = {
        "storectx_async_store_clone": "store",
        "storectx_async_store_id": "store",
        "storectx_async_store_try_write": "store",
        "storectx_async_store_write": "store",
        "storectx_write_guard_store": "guard",
        "storectx_install_async": "guard",
        "storectx_suspended_len": "segment",
        "storectx_resume": "segment",
    }

    def __init__(self, real):
        self._real = real
        self._lock = threading.Lock()
        self.held = {}       # (kind, ptr) -> references the binding holds
        self.in_flight = {}  # (kind, ptr) -> calls running on it
        self.violations = []
        self.hooks = {}      # function -> callable run just before the C call
        self.after = {}      # function -> callable run just after it (books kept)

    def __getattr__(self, name):
        real = getattr(self._real, name)
        if (name not in self.MAKES and name not in self.ENDS and name not in self.USES
                and name not in self.after):
            return real
        return lambda *args: self._call(name, real, args)

    def _violation(self, text):
        self.violations.append(text)
        if not FORWARD:
            raise AssertionError("ledger: " + text)

    def _call(self, name, real, args):
        used = self.USES.get(name)
        key = (used, _ptr(args[0])) if used else None
        ends = self.ENDS.get(name)
        end_key = (ends[0], _ptr(args[0])) if ends else None
        with self._lock:
            if key is not None and key[1] and self.held.get(key, 1) <= 0:
                self._violation("%s on a %s nobody holds (%#x)" % (name, key[0], key[1]))
            if end_key is not None and end_key[1] and not ends[1]:
                count = self.held.get(end_key, 1)
                if count <= 0:
                    self._violation("%s of a %s reference that no longer exists" % (name, ends[0]))
                if count == 1 and self.in_flight.get(end_key, 0):
                    self._violation("%s of the last %s reference while a call on it runs"
                                    % (name, ends[0]))
                if end_key in self.held:
                    self.held[end_key] = count - 1
            if key is not None:
                self.in_flight[key] = self.in_flight.get(key, 0) + 1
        try:
            hook = self.hooks.get(name)
            if hook is not None:
                hook()
            result = real(*args)
        finally:
            if key is not None:
                with self._lock:
                    self.in_flight[key] -= 1
        with self._lock:
            if ends is not None and ends[1] and result == 0 and end_key in self.held:
                self.held[end_key] -= 1
            makes = self.MAKES.get(name)
            if makes is not None:
                ptr = _ptr(result) if makes[1] == "ret" else (result == 0 and _out(args[makes[1]]))
                if ptr:
                    k = (makes[0], ptr)
                    self.held[k] = max(self.held.get(k, 0), 0) + 1
        after = self.after.get(name)
        if after is not None:
            after()
        return result


class LedgerTestCase(StoreCtxTestCase):
    def setUp(self):
        super().setUp()
        self.real_lib = storectx.lib
        self.ledger = Ledger(self.real_lib)
        storectx.lib = self.ledger

    def tearDown(self):
        storectx.lib = self.real_lib
        super().tearDown()
        self.assertEqual(self.ledger.violations, [])


def assert_refused(test, fn, obj, *words):
    with test.assertRaises(TypeError) as cm:
        fn(obj)
    text = str(cm.exception)
    test.assertIn(type(obj).__name__, text)
    for word in words:
        test.assertIn(word, text)
    return text


class CopiesAndPickles(LedgerTestCase):
    def test_copied_async_store_holds_its_own_reference(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        astore = storectx.AsyncStore(sid, addr)
        other = copy.copy(astore)
        self.assertIsNot(other, astore)
        self.assertEqual(other.id, sid)
        astore.close()
        self.assertFalse(other.closed)
        with other.try_write() as w:  # the copy's own reference: still alive
            self.assertEqual(w.store, addr)
        other.close()
        self.assertEqual([v for k, v in self.ledger.held.items() if k[0] == "store"], [0])

    def test_async_store_deepcopy_and_pickle_refused(self):
        buf, addr = buffer(b"s")
        with storectx.AsyncStore(storectx.store_id_new(), addr) as astore:
            assert_refused(self, copy.deepcopy, astore, "clone()")
            for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
                assert_refused(self, lambda o: pickle.dumps(o, protocol), astore, "pickle")
            # also inside a container
            self.assertRaises(TypeError, pickle.dumps, {"store": astore})
            self.assertRaises(TypeError, copy.deepcopy, [astore])
            with astore.try_write() as w:
                self.assertEqual(w.store, addr)

    def test_owners_of_one_c_object_refuse_copies_and_pickles(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.AsyncStore(sid, addr) as astore:
            guard = astore.try_write()
            seg = storectx.suspend(0)
            for obj in (guard, seg):
                for fn in (copy.copy, copy.deepcopy, pickle.dumps):
                    assert_refused(self, fn, obj)
            assert_refused(self, copy.copy, guard, "write lock")
            assert_refused(self, copy.copy, seg, "segment")
            self.assertEqual(guard.store, addr)  # untouched by the refusals
            guard.release()
            seg.free()
            astore.try_write().release()  # released once, not twice

    def test_stack_guards_refuse_copies_and_pickles(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.installed(sid, addr) as g, storectx.borrowed(sid) as b:
            with storectx.paused(sid) as p:
                for obj in (g, b, p):
                    for fn in (copy.copy, copy.deepcopy, pickle.dumps):
                        assert_refused(self, fn, obj, "one")
        with storectx.AsyncStore(sid, addr) as astore:
            with astore.try_write().install():
                with storectx.get_current_async(sid) as b:
                    assert_refused(self, copy.copy, b)
                    b.async_store.close()

    def test_raw_handles_copy_as_values_but_never_pickle(self):
        for cls in (storectx.InstallGuardHandle, storectx.BorrowHandle,
                    storectx.PauseGuardHandle):
            h = cls(0x1234)
            self.assertEqual(copy.copy(h).raw, 0x1234)
            self.assertEqual(copy.deepcopy(h).raw, 0x1234)
            assert_refused(self, pickle.dumps, h, "process")


class UsedWhileReleased(LedgerTestCase):
    def test_close_during_a_blocking_write(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        astore = storectx.AsyncStore(sid, addr)
        holder = astore.try_write()
        entered = threading.Event()
        self.ledger.hooks["storectx_async_store_write"] = entered.set
        got = {}

        def writer():
            try:
                with astore.write(timeout=JOIN_TIMEOUT) as w:
                    got["store"] = w.store
            except BaseException as exc:  # noqa: B902 -- reported below
                got["error"] = exc

        thread = threading.Thread(target=writer)
        thread.start()
        self.assertTrue(entered.wait(JOIN_TIMEOUT))
        time.sleep(0.05)  # well inside storectx_async_store_write's wait
        started = time.monotonic()
        astore.close()  # does not wait for the writer, does not free under it
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertTrue(astore.closed)
        self.assertRaises(ValueError, astore.try_write)  # closed for new calls
        self.assertTrue(thread.is_alive())
        holder.release()  # the writer gets the lock, on the live store
        thread.join(JOIN_TIMEOUT)
        self.assertFalse(thread.is_alive())
        self.assertNotIn("error", got, got.get("error"))
        self.assertEqual(got["store"], addr)
        # the writer was the last user: its return released the reference
        self.assertEqual([v for k, v in self.ledger.held.items() if k[0] == "store"], [0])

    def test_close_from_many_threads_while_calls_run(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        for _ in range(20):
            astore = storectx.AsyncStore(sid, addr)
            barrier = threading.Barrier(5)
            errors = []

            def user():
                barrier.wait()
                for _ in range(50):
                    try:
                        astore.try_write().release()
                        astore.id  # noqa: B018
                        astore.clone().close()
                    except ValueError:
                        return  # closed: refused cleanly
                    except StoreCtxError as err:
                        if err.status != Status.BUSY:
                            errors.append(err)
                    except AssertionError as err:
                        errors.append(err)

            def closer():
                barrier.wait()
                astore.close()

            threads = [threading.Thread(target=user) for _ in range(4)]
            threads.append(threading.Thread(target=closer))
            for t in threads:
                t.start()
            for t in threads:
                t.join(JOIN_TIMEOUT)
            self.assertEqual(errors, [])
        self.assertTrue(all(v == 0 for k, v in self.ledger.held.items() if k[0] == "store"))

    def _race_during(self, c_function, call, racer):
        """Run call() with racer() started on another thread while call's C
        function runs; the racer must wait for the call to return."""
        racers = []

        def hook():
            thread = threading.Thread(target=racer)
            thread.start()
            thread.join(0.2)  # a racer that must wait for the call blocks here
            racers.append(thread)

        self.ledger.hooks[c_function] = hook
        result = call()
        del self.ledger.hooks[c_function]
        self.assertEqual(len(racers), 1)
        racers[0].join(JOIN_TIMEOUT)
        self.assertFalse(racers[0].is_alive())
        return result

    def test_write_guard_release_during_install(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        with storectx.AsyncStore(sid, addr) as astore:
            wg = astore.try_write()
            g = self._race_during("storectx_install_async", wg.install, wg.release)
            self.assertTrue(g.installed)
            self.assertStatus(Status.WOULD_DEADLOCK, astore.write, 0)  # the entry holds the lock
            g.uninstall()
            astore.try_write().release()

    def test_segment_free_during_resume(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        g = storectx.install(sid, addr)
        seg = storectx.suspend(0)
        self._race_during("storectx_resume", seg.resume, seg.free)
        self.assertFalse(seg.pending)
        self.assertTrue(g.installed)  # resumed, not freed under the resume
        g.uninstall()

    def test_async_store_close_during_every_call(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        calls = [
            ("storectx_async_store_id", lambda s: s.id),
            ("storectx_async_store_clone", lambda s: s.clone().close()),
            ("storectx_async_store_try_write", lambda s: s.try_write().release()),
            ("storectx_async_store_write", lambda s: s.write(1).release()),
        ]
        for c_function, call in calls:
            astore = storectx.AsyncStore(sid, addr)
            self._race_during(c_function, lambda: call(astore), astore.close)
            self.assertTrue(astore.closed)
        self.assertTrue(all(v == 0 for k, v in self.ledger.held.items() if k[0] == "store"))

    def test_write_guard_store_during_release_elsewhere(self):
        buf, addr = buffer(b"s")
        with storectx.AsyncStore(storectx.store_id_new(), addr) as astore:
            wg = astore.try_write()
            store = self._race_during("storectx_write_guard_store", lambda: wg.store, wg.release)
            self.assertEqual(store, addr)
            self.assertFalse(wg.owned)
            astore.try_write().release()


class Interrupted(BaseException):
    """What a signal handler raises (KeyboardInterrupt for Ctrl-C, a timeout
    exception for SIGALRM): Python runs it at the first bytecode after a C
    call returns, before the binding has looked at the call's result."""


class InterruptedRightAfterTheCall(LedgerTestCase):
    """A signal handler that raises right after a C call returns must not
    make the call half happen: the lock, reference, entry, borrow, pause or
    segment it made is given back (or the one it consumed is taken back).
    Before the fix the result was in a local the exception dropped: a write
    guard lost with its lock (the store BUSY for ever), a segment lost with
    its entries' locks, an entry or borrow left on the thread with no guard."""

    def interrupt_after(self, c_function):
        def boom():
            raise Interrupted(c_function)
        self.ledger.after[c_function] = boom

    def setUp(self):
        super().setUp()
        self.buf, self.addr = buffer(b"s")
        self.sid = storectx.store_id_new()
        self.astore = storectx.AsyncStore(self.sid, self.addr)

    def tearDown(self):
        self.ledger.after.clear()
        self.astore.try_write().release()  # the lock is free
        self.astore.close()
        import gc
        gc.collect()
        self.assertTrue(all(v == 0 for k, v in self.ledger.held.items()),
                        "references left: %r" % self.ledger.held)
        super().tearDown()

    def assert_unchanged(self, c_function, call):
        before = storectx.describe()
        self.interrupt_after(c_function)
        with self.assertRaises(Interrupted):
            call()
        del self.ledger.after[c_function]
        self.assertEqual(storectx.describe(), before, c_function)

    def test_lock_making_calls(self):
        self.assert_unchanged("storectx_async_store_try_write", self.astore.try_write)
        self.assert_unchanged("storectx_async_store_write", lambda: self.astore.write(1))
        self.assert_unchanged("storectx_async_store_new",
                              lambda: storectx.AsyncStore(self.sid, self.addr))
        self.assert_unchanged("storectx_async_store_clone", self.astore.clone)
        # (tearDown: no reference left in the ledger's books)

    def test_install_async_consumes_nothing(self):
        wg = self.astore.try_write()
        self.assert_unchanged("storectx_install_async", wg.install)
        self.assertFalse(wg.owned)  # undone: the entry took the lock and gave it back
        self.assertEqual(self.ledger.violations, [])

    def test_stack_calls(self):
        other_buf, other_addr = buffer(b"o")
        other = storectx.store_id_new()
        self.assert_unchanged("storectx_install", lambda: storectx.install(other, other_addr))
        with self.astore.try_write().install(), storectx.installed(other, other_addr):
            self.assert_unchanged("storectx_get_current", lambda: storectx.get_current(other))
            self.assert_unchanged("storectx_get_current_unborrowed",
                                  storectx.get_current_unborrowed)
            self.assert_unchanged("storectx_pause", lambda: storectx.pause(other))
            with storectx.borrowed(other) as b:
                self.assert_unchanged("storectx_borrow_clone", b.clone)
                with storectx.paused(other):
                    pass
            self.assert_unchanged("storectx_suspend", lambda: storectx.suspend(0))
            seg = storectx.suspend(0)
            self.assertEqual(storectx.depth(), 0)
            self.assert_unchanged("storectx_resume", seg.resume)
            self.assertTrue(seg.pending)  # still the caller's, entries inside
            seg.resume()
        with self.astore.try_write().install():
            self.assert_unchanged("storectx_get_current_async",
                                  lambda: storectx.get_current_async(self.sid))
        self.assertEqual(storectx.depth(), 0)

    @unittest.skipUnless(threading.current_thread() is threading.main_thread()
                         and hasattr(signal, "pthread_kill"), "signals go to the main thread")
    def test_signal_during_a_blocking_write(self):
        """The real thing: SIGUSR1's handler raises while write() waits in C
        (the wait goes on: ctypes cannot be interrupted); when the lock comes
        the exception is raised before write() returns the guard."""
        real = self.real_lib
        waiting = threading.Event()

        class SaysWhenItWaits:
            """The real library (no books kept after the call, where the
            signal would land); says when write() is about to wait in C."""

            def __getattr__(self, name):
                fn = getattr(real, name)
                if name != "storectx_async_store_write":
                    return fn

                def call(*args):
                    waiting.set()
                    return fn(*args)
                return call

        storectx.lib = SaysWhenItWaits()

        def handler(signum, frame):
            raise Interrupted("SIGUSR1")

        previous = signal.signal(signal.SIGUSR1, handler)
        holder = self.astore.try_write()
        main = threading.get_ident()

        def other():
            waiting.wait(JOIN_TIMEOUT)
            time.sleep(0.05)  # inside the C wait (the GIL is released there)
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.05)
            holder.release()

        thread = threading.Thread(target=other)
        thread.start()
        try:
            with self.assertRaises(Interrupted):
                self.astore.write(JOIN_TIMEOUT)
        finally:
            thread.join(JOIN_TIMEOUT)
            signal.signal(signal.SIGUSR1, previous)
            storectx.lib = self.ledger
        self.astore.try_write().release()  # before the fix: BUSY for ever


if __name__ == "__main__":
    unittest.main(verbosity=2)
