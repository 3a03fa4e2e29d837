"""asyncio tasks carry their libstorectx entries (bindings/python/storectx.py).

Run:  STORECTX_LIB=target/debug/libstorectx.so python3 bindings/python/test_asyncio.py
(``cargo test --features testing --test python_binding`` runs it).

Covers: interleaved tasks each holding a sync and an async entry across
awaits (each sees only its own top, no OUT_OF_ORDER, the loop's thread is
empty between steps); the three ways in (``carried()``, ``@carrying``,
``task_factory``); tasks hopping to executor threads with their entries
(``run_in_executor`` / ``asyncio.to_thread`` with ``with_entries``,
``storectx.to_thread``) and without them (plain ``asyncio.to_thread``);
cancellation and exceptions (entries unwound or freed, locks released,
``depth() == 0`` on the loop's thread after the tasks end), also while an
executor thread holds the entries; ``AsyncStore.write_async``; the C names
(``install_async`` ...); and docs/python.md's asyncio snippet
(``DOCS_ASYNCIO``, run verbatim, and found in docs/python.md).
"""

import asyncio
import contextlib
import ctypes
import io
import os
import re
import sys
import threading
import time
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import storectx  # noqa: E402
from storectx import Status, StoreCtxError  # noqa: E402
from test_storectx import StoreCtxTestCase, buffer  # noqa: E402

DOCS = os.path.join(HERE, "..", "..", "docs", "python.md")

# asyncio.to_thread is Python 3.9+. On 3.8 (the oldest Python the binding
# supports) the checks of asyncio.to_thread itself are skipped, and a plain
# executor thread is reached with run_in_executor instead.
HAS_TO_THREAD = hasattr(asyncio, "to_thread")


async def plain_worker(fn):
    """Runs ``fn`` on an executor thread that knows nothing of the task:
    ``asyncio.to_thread(fn)``, or ``run_in_executor`` before Python 3.9."""
    if HAS_TO_THREAD:
        return await asyncio.to_thread(fn)
    return await asyncio.get_running_loop().run_in_executor(None, fn)
SNIPPET_MARK = "<!-- snippet: bindings/python/test_asyncio.py -->"


# The docs/python.md asyncio snippet, verbatim (same lines as there).
DOCS_ASYNCIO = '''\
import asyncio
import ctypes
import storectx

shared = ctypes.create_string_buffer(b"shared store")
lock = storectx.AsyncStore(storectx.store_id_new(), ctypes.addressof(shared))

def host_import(store_id):  # deep in guest code, on whatever thread runs it
    with storectx.borrowed(store_id) as current:
        return ctypes.string_at(current.address)

@storectx.carrying  # the task's entries follow it across every await
async def handler(name):
    mine = ctypes.create_string_buffer(name.encode())
    mine_id = storectx.store_id_new()
    with storectx.install_async(await lock.write_async()):   # lock held across awaits
        with storectx.installed(mine_id, ctypes.addressof(mine)):
            await asyncio.sleep(0.001)                        # other tasks run here
            assert host_import(mine_id) == name.encode()      # still our own top
            # on an executor thread, with the task's entries:
            assert await storectx.to_thread(host_import, mine_id) == name.encode()
    return name

async def main():
    print(await asyncio.gather(handler("a"), handler("b"), handler("c")))
    assert storectx.depth() == 0  # nothing left on the loop's thread

asyncio.run(main())
lock.close()
'''


class Store:
    """A store of the test: an id, a ctypes buffer and its address."""

    def __init__(self, text=b"store"):
        self.buf, self.address = buffer(text)
        self.id = storectx.store_id_new()


class LoopWatch:
    """Checks, between the steps of the tasks, that the loop's thread has no
    entry: a callback re-armed with call_soon runs between every two steps."""

    def __init__(self, test, loop):
        self.test, self.loop = test, loop
        self.seen = []
        self.running = True
        loop.call_soon(self.tick)

    def tick(self):
        self.seen.append(storectx.depth())
        if self.running:
            self.loop.call_soon(self.tick)

    def stop(self):
        self.running = False
        self.test.assertTrue(self.seen)
        self.test.assertEqual(set(self.seen), {0}, "entries on the loop's thread between steps")


class AsyncioTestCase(StoreCtxTestCase):
    def run_async(self, coro, factory=False):
        """asyncio.run(coro), with the loop's thread checked empty after."""
        async def main():
            if factory:
                asyncio.get_running_loop().set_task_factory(storectx.task_factory)
                return await asyncio.create_task(coro)
            return await coro

        result = asyncio.run(main())
        self.assertEqual(storectx.depth(), 0, storectx.describe())
        return result

    def expect_own_top(self, mine, others):
        self.assertEqual(storectx.active_store(), mine.id)
        with storectx.borrowed(mine.id) as b:
            self.assertEqual(b.address, mine.address)
        for other in others:
            self.assertFalse(storectx.is_active(other.id))
            self.assertFalse(storectx.is_paused(other.id))


class WithoutCarrying(AsyncioTestCase):
    def test_interleaved_tasks_break_without_carried(self):
        """Why carried() exists: plain tasks leave their entries on the loop's
        thread, and the second one's entry is on top when the first leaves."""
        a, b = Store(b"a"), Store(b"b")
        errors = []

        async def task(store):
            guard = storectx.install(store.id, store.address)
            await asyncio.sleep(0)
            try:
                guard.uninstall()
            except StoreCtxError as err:
                errors.append(err.status)
                await asyncio.sleep(0)  # the other task uninstalls first
                guard.uninstall()

        async def main():
            await asyncio.gather(task(a), task(b))

        asyncio.run(main())
        self.assertEqual(errors, [Status.OUT_OF_ORDER])


class Interleaved(AsyncioTestCase):
    N_TASKS = 8
    N_AWAITS = 20

    async def holder(self, mine, everyone, lock_store, delay):
        """A task holding an async entry (its store's lock) and a sync entry
        across awaits; each step sees only its own top."""
        others = [s for s in everyone if s is not mine]
        with storectx.install_async(await lock_store.write_async(timeout=5)):
            with storectx.installed(mine.id, mine.address):
                for i in range(self.N_AWAITS):
                    await asyncio.sleep(delay if i % 3 else 0)
                    self.assertEqual(storectx.depth(), 2)
                    self.expect_own_top(mine, others)
                    self.assertTrue(storectx.is_paused(lock_store.id))
                    self.assertStatus(Status.WOULD_DEADLOCK, lock_store.write, 0)
        self.assertEqual(storectx.depth(), 0)
        return mine.id

    def test_interleaved_tasks_see_only_their_own_top(self):
        stores = [Store(b"s%d" % i) for i in range(self.N_TASKS)]
        lock_bufs = [buffer(b"locked") for _ in stores]
        locks = [storectx.AsyncStore(storectx.store_id_new(), addr) for _, addr in lock_bufs]

        async def main():
            watch = LoopWatch(self, asyncio.get_running_loop())
            tasks = [asyncio.create_task(storectx.carried(
                self.holder(s, stores, lock, 0.001 * (i % 3))))
                for i, (s, lock) in enumerate(zip(stores, locks))]
            done = await asyncio.gather(*tasks)
            watch.stop()
            return done

        self.assertEqual(self.run_async(main()), [s.id for s in stores])
        for lock in locks:
            lock.try_write().release()  # every lock was released
            lock.close()

    def test_tasks_sharing_one_async_store_take_turns(self):
        """write_async waits without blocking the loop: the task holding the
        lock across its awaits runs and releases it."""
        buf, addr = buffer(b"shared")
        sid = storectx.store_id_new()
        shared = storectx.AsyncStore(sid, addr)
        order = []

        @storectx.carrying
        async def user(name):
            with storectx.install_async(await shared.write_async(timeout=5)):
                order.append(name + " in")
                for _ in range(3):
                    await asyncio.sleep(0.001)
                    self.assertEqual(storectx.get_current_transient(sid), addr)
                order.append(name + " out")

        async def main():
            await asyncio.gather(*(user(n) for n in "abc"))

        self.run_async(main())
        # one at a time: each "in" is followed by its own "out"
        self.assertEqual([order[i][0] for i in range(0, 6, 2)],
                         [order[i][0] for i in range(1, 6, 2)])
        shared.close()

    def test_write_async_would_deadlock_and_times_out(self):
        buf, addr = buffer(b"s")
        astore = storectx.AsyncStore(storectx.store_id_new(), addr)

        @storectx.carrying
        async def own_lock():
            with storectx.install_async(await astore.write_async()):
                await asyncio.sleep(0)
                with self.assertRaises(StoreCtxError) as cm:
                    await astore.write_async(timeout=1)
                self.assertEqual(cm.exception.status, Status.WOULD_DEADLOCK)

        async def other_holds_it():
            guard = astore.try_write()
            try:
                with self.assertRaises(StoreCtxError) as cm:
                    await astore.write_async(timeout=0.02)
                self.assertEqual(cm.exception.status, Status.TIMED_OUT)
            finally:
                guard.release()

        self.run_async(own_lock())
        self.run_async(other_holds_it())
        astore.try_write().release()
        astore.close()

    def test_task_factory_carries_every_task(self):
        stores = [Store() for _ in range(4)]

        async def plain(mine):  # no decorator: the factory carries it
            with storectx.installed(mine.id, mine.address):
                for _ in range(5):
                    await asyncio.sleep(0)
                    self.expect_own_top(mine, [s for s in stores if s is not mine])

        async def main():
            self.assertIsNotNone(storectx.current_task_context())
            watch = LoopWatch(self, asyncio.get_running_loop())
            await asyncio.gather(*(asyncio.create_task(plain(s)) for s in stores))
            watch.stop()

        self.run_async(main(), factory=True)

    def test_child_carried_inside_a_carried_task(self):
        parent, child = Store(b"parent"), Store(b"child")

        async def child_task():
            self.assertEqual(storectx.active_store(), parent.id)  # on top of the parent's
            with storectx.installed(child.id, child.address):
                await asyncio.sleep(0)
                self.assertEqual(storectx.depth(), 2)
                self.assertEqual(storectx.active_store(), child.id)
            return "child done"

        @storectx.carrying
        async def parent_task():
            with storectx.installed(parent.id, parent.address):
                self.assertEqual(await storectx.carried(child_task()), "child done")
                await asyncio.sleep(0)
                self.assertEqual(storectx.depth(), 1)
                self.assertEqual(storectx.active_store(), parent.id)

        self.run_async(parent_task())

    def test_any_awaitable_and_a_hand_stepped_coroutine(self):
        s = Store()

        @storectx.carrying
        async def task():
            with storectx.installed(s.id, s.address):
                fut = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().call_later(0.001, fut.set_result, 5)
                self.assertEqual(await storectx.carried(fut), 5)  # a bare future
                self.assertEqual(storectx.active_store(), s.id)
                await asyncio.sleep(0)
            return 9

        self.assertEqual(self.run_async(task()), 9)

        # Driven by hand (no event loop): send() steps it, entries parked between.
        class Yield:
            def __await__(self):
                yield "step"

        async def by_hand():
            with storectx.installed(s.id, s.address):
                await Yield()
                self.assertEqual(storectx.active_store(), s.id)
                await Yield()
            return "end"

        coro = storectx.carried(by_hand())
        self.assertEqual(coro.send(None), "step")
        self.assertEqual(storectx.depth(), 0)  # parked between steps
        self.assertEqual(coro.send(None), "step")
        with self.assertRaises(StopIteration) as cm:
            coro.send(None)
        self.assertEqual(cm.exception.value, "end")
        self.assertEqual(storectx.depth(), 0)


class Executors(AsyncioTestCase):
    def test_run_in_executor_with_entries(self):
        s, extra = Store(b"task"), Store(b"extra")
        loop_thread = []

        def on_executor():
            self.assertNotEqual(threading.get_ident(), loop_thread[0])
            self.assertEqual(storectx.depth(), 1)
            self.assertEqual(storectx.active_store(), s.id)
            with storectx.borrowed(s.id) as b:
                self.assertEqual(b.address, s.address)
            # an entry pushed here follows the task back
            return storectx.install(extra.id, extra.address)

        @storectx.carrying
        async def task():
            loop_thread.append(threading.get_ident())
            loop = asyncio.get_running_loop()
            watch = LoopWatch(self, loop)
            with storectx.installed(s.id, s.address):
                guard = await loop.run_in_executor(None, storectx.with_entries(on_executor))
                self.assertEqual(threading.get_ident(), loop_thread[0])
                self.assertEqual(storectx.depth(), 2)
                self.assertEqual(storectx.active_store(), extra.id)
                guard.uninstall()  # a handle made on the executor thread
                self.assertEqual(storectx.active_store(), s.id)
            watch.stop()

        self.run_async(task())

    def test_to_thread_with_and_without_entries(self):
        s = Store()

        def sees_entries():
            return storectx.active_store()

        def plain():
            return storectx.depth()  # a worker that knows nothing of the task

        @storectx.carrying
        async def task():
            with storectx.installed(s.id, s.address):
                if HAS_TO_THREAD:
                    self.assertEqual(
                        await asyncio.to_thread(storectx.with_entries(sees_entries)), s.id)
                self.assertEqual(await storectx.to_thread(sees_entries), s.id)
                self.assertEqual(await plain_worker(plain), 0)
                self.assertEqual(storectx.active_store(), s.id)
                # called on the task's own step, it just runs
                self.assertEqual(storectx.with_entries(sees_entries)(), s.id)

        self.run_async(task())
        self.assertRaises(RuntimeError, storectx.with_entries, plain)  # not in a task

    def test_a_plain_task_made_inside_a_carried_one_has_no_entries_to_lend(self):
        """asyncio.create_task() inside a carried task (no task factory) runs
        the new task in a copy of the creator's contextvars, which still
        name the creator's TaskContext. That task is not carried: it gets
        no context and with_entries/to_thread refuse. Before the fix they
        lent the creator's entries to the other task's executor thread
        (which saw, and could pop or push on, the creator's stack)."""
        mine = Store(b"creator")
        seen = {}

        def where():
            return storectx.active_store()

        async def plain():
            seen["context"] = storectx.current_task_context()
            with self.assertRaises(RuntimeError):
                await storectx.to_thread(where)
            self.assertRaises(RuntimeError, storectx.with_entries, where)
            seen["worker"] = await plain_worker(where)

        @storectx.carrying
        async def creator():
            with storectx.installed(mine.id, mine.address):
                await asyncio.create_task(plain())
                self.assertIsNotNone(storectx.current_task_context())
                self.assertEqual(await storectx.to_thread(where), mine.id)

        self.run_async(creator())
        self.assertEqual(seen, {"context": None, "worker": 0})

    def test_to_thread_awaited_in_a_task_of_its_own(self):
        """wait_for (3.11), gather and shield await storectx.to_thread() in
        a task of their own: the entries lent are those of the task that
        called to_thread (one worker at a time)."""
        s = Store()

        def where(delay=0):
            time.sleep(delay)
            return storectx.active_store()

        @storectx.carrying
        async def task():
            with storectx.installed(s.id, s.address):
                self.assertEqual(await asyncio.wait_for(storectx.to_thread(where), 10), s.id)
                self.assertEqual(await asyncio.gather(storectx.to_thread(where, 0.005),
                                                      storectx.to_thread(where, 0.005)),
                                 [s.id, s.id])
                self.assertEqual(await asyncio.shield(storectx.to_thread(where)), s.id)
                self.assertEqual(storectx.active_store(), s.id)

        self.run_async(task())

    def test_two_tasks_hopping_to_executors_concurrently(self):
        stores = [Store() for _ in range(4)]

        def work(mine):
            self.assertEqual(storectx.active_store(), mine.id)
            self.assertEqual(storectx.depth(), 1)
            return mine.id

        @storectx.carrying
        async def task(mine):
            with storectx.installed(mine.id, mine.address):
                for _ in range(5):
                    self.assertEqual(await storectx.to_thread(work, mine), mine.id)
                    await asyncio.sleep(0)
                    self.assertEqual(storectx.active_store(), mine.id)

        async def main():
            await asyncio.gather(*(task(s) for s in stores))

        self.run_async(main())


class CancelAndRaise(AsyncioTestCase):
    def test_cancel_unwinds_with_blocks_and_releases_locks(self):
        s = Store()
        buf, addr = buffer(b"locked")
        astore = storectx.AsyncStore(storectx.store_id_new(), addr)
        seen = {}

        @storectx.carrying
        async def task(started):
            with storectx.install_async(await astore.write_async()):
                with storectx.installed(s.id, s.address):
                    started.set()
                    try:
                        await asyncio.sleep(30)
                    except asyncio.CancelledError:
                        seen["depth"] = storectx.depth()  # the entries are back for the unwinding
                        seen["top"] = storectx.active_store()
                        raise

        async def main():
            started = asyncio.Event()
            t = asyncio.create_task(task(started))
            await started.wait()
            self.assertStatus(Status.BUSY, astore.try_write)  # held across the await
            t.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t
            self.assertEqual(storectx.depth(), 0)

        self.run_async(main())
        self.assertEqual(seen, {"depth": 2, "top": s.id})
        astore.try_write().release()
        astore.close()

    def test_cancel_frees_entries_the_task_did_not_unwind(self):
        buf, addr = buffer(b"locked")
        astore = storectx.AsyncStore(storectx.store_id_new(), addr)
        s = Store()

        @storectx.carrying
        async def leaky(started):
            storectx.install_async(await astore.write_async())  # never uninstalled
            storectx.install(s.id, s.address)
            started.set()
            await asyncio.sleep(30)

        async def main():
            started = asyncio.Event()
            t = asyncio.create_task(leaky(started))
            await started.wait()
            t.cancel()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with self.assertRaises(asyncio.CancelledError):
                    await t
            self.assertTrue(any(issubclass(w.category, ResourceWarning) for w in caught))
            self.assertEqual(storectx.depth(), 0)
            astore.try_write().release()  # the lock was released with the entries

        self.run_async(main())
        astore.close()

    def test_exceptions_reach_the_task_with_its_entries(self):
        s = Store()

        class Boom(Exception):
            pass

        async def fails_later():
            await asyncio.sleep(0)
            raise Boom("from a callee")

        @storectx.carrying
        async def task():
            with storectx.installed(s.id, s.address):
                fut = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().call_soon(fut.set_exception, Boom("from a future"))
                try:
                    await fut
                except Boom:
                    self.assertEqual(storectx.active_store(), s.id)
                try:
                    await storectx.to_thread(lambda: (_ for _ in ()).throw(Boom("on a worker")))
                except Boom:
                    self.assertEqual(storectx.active_store(), s.id)
                await fails_later()  # escapes: the with-block unwinds on the way out

        with self.assertRaises(Boom):
            self.run_async(task())
        self.assertEqual(storectx.depth(), 0)

    def test_cancel_while_an_executor_thread_holds_the_entries(self):
        s = Store()
        release_worker = threading.Event()
        worker_has_them = threading.Event()
        seen = {}

        def slow():
            worker_has_them.set()
            release_worker.wait(10)
            self.assertEqual(storectx.active_store(), s.id)

        @storectx.carrying
        async def task():
            with storectx.installed(s.id, s.address):
                try:
                    await storectx.to_thread(slow)
                except asyncio.CancelledError:
                    seen["top"] = storectx.active_store()  # back only after slow() returned
                    seen["worker done"] = release_worker.is_set()
                    raise

        async def main():
            loop = asyncio.get_running_loop()
            t = asyncio.create_task(task())
            await loop.run_in_executor(None, worker_has_them.wait, 10)
            t.cancel()
            # the loop keeps running other work while the worker holds them
            ticks = 0
            for _ in range(5):
                await asyncio.sleep(0.002)
                ticks += 1
                self.assertEqual(storectx.depth(), 0)
            self.assertFalse(t.done())
            release_worker.set()
            with self.assertRaises(asyncio.CancelledError):
                await t
            return ticks

        self.assertEqual(self.run_async(main()), 5)
        self.assertEqual(seen, {"top": s.id, "worker done": True})

    def test_coroutine_closed_while_suspended_unwinds(self):
        """A task's coroutine closed without finishing (e.g. garbage
        collected, or closed by hand) runs its with-blocks with its entries."""
        s = Store()
        unwound = []

        class Yield:
            def __await__(self):
                yield

        async def body():
            try:
                with storectx.installed(s.id, s.address):
                    await Yield()
            finally:
                unwound.append(storectx.depth())

        coro = storectx.carried(body())
        coro.send(None)
        self.assertEqual(storectx.depth(), 0)
        coro.close()
        self.assertEqual(unwound, [0])  # the with-block popped its entry on close
        self.assertEqual(storectx.depth(), 0)

    def test_resumed_on_a_thread_that_has_its_store(self):
        """ALREADY_ON_STACK, as for C++ carry(): the task's entries are
        dropped (locks released) and the error is raised at its await."""
        s = Store()
        buf, addr = buffer(b"locked")
        astore = storectx.AsyncStore(storectx.store_id_new(), addr)
        seen = {}

        @storectx.carrying
        async def task(fut):
            storectx.install_async(await astore.write_async())
            guard = storectx.install(s.id, s.address)
            try:
                await fut
            except StoreCtxError as err:
                seen["status"] = err.status
                seen["depth"] = storectx.depth()  # the outsider's entry only
                self.assertStatus(Status.STALE_HANDLE, guard.uninstall)  # dropped

        async def main():  # not carried: its entry stays on the loop's thread
            fut = asyncio.get_running_loop().create_future()
            t = asyncio.create_task(task(fut))
            await asyncio.sleep(0.01)
            outsider = storectx.install(s.id, s.address)
            fut.set_result(None)
            await t
            outsider.uninstall()
            astore.try_write().release()  # the dropped entry's lock was released

        self.run_async(main())
        self.assertEqual(seen, {"status": Status.ALREADY_ON_STACK, "depth": 1})
        astore.close()

    def test_a_step_that_pops_below_its_base(self):
        """A task that uninstalls an entry it did not push (below its base)
        gets INVALID_ARGUMENT at its next await; nothing else changes."""
        s = Store()
        seen = {}

        @storectx.carrying
        async def task(foreign):
            foreign.uninstall()  # an entry of the loop's thread, not the task's
            try:
                await asyncio.sleep(0)
            except StoreCtxError as err:
                seen["status"] = err.status
            seen["depth"] = storectx.depth()

        async def main():
            outsider = storectx.install(s.id, s.address)
            await asyncio.create_task(task(outsider))

        self.run_async(main())
        self.assertEqual(seen, {"status": Status.INVALID_ARGUMENT, "depth": 0})

    def test_interrupted_while_parking_the_entries(self):
        """A signal handler raising (Ctrl-C, a SIGALRM timeout) right after
        the storectx_suspend that parks a task's entries at its await: the
        task ends with that exception, its with-blocks unwind with its
        entries, the lock is released and nothing stays on the loop's
        thread. Before the fix the segment was lost with its lock (BUSY for
        ever) and the context stayed "held" (a with_entries() call then
        waited for ever)."""
        buf, addr = buffer(b"locked")
        astore = storectx.AsyncStore(storectx.store_id_new(), addr)
        s = Store()
        real = storectx.lib
        unwound = []

        class Interrupted(BaseException):
            pass

        class RaiseOnceAfterSuspend:
            armed = False

            def __getattr__(self, name):
                fn = getattr(real, name)
                if name != "storectx_suspend":
                    return fn

                def call(*args):
                    status = fn(*args)
                    if RaiseOnceAfterSuspend.armed:
                        RaiseOnceAfterSuspend.armed = False
                        raise Interrupted("signal")
                    return status
                return call

        @storectx.carrying
        async def task():
            try:
                with storectx.install_async(await astore.write_async()):
                    with storectx.installed(s.id, s.address):
                        RaiseOnceAfterSuspend.armed = True
                        await asyncio.sleep(0)
            finally:
                unwound.append(storectx.depth())

        storectx.lib = RaiseOnceAfterSuspend()
        try:
            with self.assertRaises(Interrupted):
                self.run_async(task())
        finally:
            storectx.lib = real
        self.assertEqual(storectx.depth(), 0, storectx.describe())
        self.assertEqual(unwound, [0])  # the with-blocks popped their entries
        astore.try_write().release()  # the lock was released
        astore.close()

    def test_a_step_that_pops_below_its_base_and_pushes_in_its_place(self):
        """The task uninstalls an entry of the loop's thread and installs its
        own in its place, so the depth at its await is its base again: it
        gets INVALID_ARGUMENT at that await (before the fix: nothing, and
        its entry silently stayed on the loop's thread, outside the task)."""
        outsider_store, mine = Store(b"outsider"), Store(b"mine")
        seen = {}

        @storectx.carrying
        async def task(foreign):
            foreign.uninstall()  # not the task's
            guard = storectx.install(mine.id, mine.address)
            try:
                await asyncio.sleep(0)
            except StoreCtxError as err:
                seen["status"] = err.status
            guard.uninstall()

        async def main():
            outsider = storectx.install(outsider_store.id, outsider_store.address)
            await asyncio.create_task(task(outsider))

        self.run_async(main())
        self.assertEqual(seen, {"status": Status.INVALID_ARGUMENT})

    def test_awaitable_whose_iterator_has_no_send_or_throw(self):
        """``__await__`` may return any iterator: carried() steps it with
        next() and raises a thrown exception (a cancel) at its await, as a
        coroutine's await does. Before the fix: AttributeError ('send', then
        'throw' on cancel)."""
        s = Store()

        class Plain:
            def __await__(self):
                return iter([None] * 3)

        class Endless:
            def __await__(self):
                return iter([None] * 10**6)

        @storectx.carrying
        async def task(started):
            with storectx.installed(s.id, s.address):
                await storectx.carried(Plain())
                self.assertEqual(storectx.active_store(), s.id)
                started.set()
                await storectx.carried(Endless())

        async def main():
            started = asyncio.Event()
            t = asyncio.create_task(task(started))
            waiting = asyncio.ensure_future(started.wait())
            await asyncio.wait({t, waiting}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            self.assertFalse(t.done(), t.done() and t.exception())
            t.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t

        self.run_async(main())

    def test_pending_task_garbage_collected_unwinds_without_errors(self):
        """A pending carried task dropped with its loop (never cancelled):
        the collector closes the task's coroutine before the carrying, in
        an order Python does not define, so its with-blocks ran while the
        entries were parked and each reported STALE_HANDLE ("Exception
        ignored in ..."; the entries were freed after). Now a guard of that
        task borrows the parked entries for its call: no error, lock free,
        nothing on the thread."""
        import gc

        s = Store(b"s")
        buf, addr = buffer(b"locked")
        astore = storectx.AsyncStore(storectx.store_id_new(), addr)
        ignored = []
        hook, sys.unraisablehook = sys.unraisablehook, lambda u: ignored.append(u.exc_value)
        loop = asyncio.new_event_loop()

        async def helper():
            with storectx.installed(s.id, s.address):
                await loop.create_future()  # never set

        @storectx.carrying
        async def pending():
            with storectx.install_async(await astore.write_async()):
                await helper()

        try:
            t = loop.create_task(pending())
            loop.run_until_complete(asyncio.sleep(0.005))
            self.assertStatus(Status.BUSY, astore.try_write)
            loop.close()
            del t, loop, helper, pending
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gc.collect()
        finally:
            sys.unraisablehook = hook
        self.assertEqual([e for e in ignored if isinstance(e, StoreCtxError)], [])
        self.assertEqual(storectx.depth(), 0)
        astore.try_write().release()
        astore.close()

    def test_a_guard_used_by_another_task_is_refused(self):
        """Borrowing parked entries is only for a task's coroutine closed
        outside its carrying: another task using its guard still gets
        STALE_HANDLE."""
        s = Store()
        shared, seen = [], {}

        @storectx.carrying
        async def owner():
            guard = storectx.install(s.id, s.address)
            shared.append(guard)
            await asyncio.sleep(0.01)
            guard.uninstall()

        @storectx.carrying
        async def intruder():
            while not shared:
                await asyncio.sleep(0)
            try:
                shared[0].uninstall()
            except StoreCtxError as err:
                seen["status"] = err.status

        async def main():
            await asyncio.gather(owner(), intruder())

        self.run_async(main())
        self.assertEqual(seen, {"status": Status.STALE_HANDLE})

    def test_copy_and_pickle_of_a_task_context_refused(self):
        import copy
        import pickle

        ctx = storectx.TaskContext()
        for fn in (copy.copy, copy.deepcopy, pickle.dumps):
            with self.assertRaises(TypeError) as cm:
                fn(ctx)
            self.assertIn("TaskContext", str(cm.exception))


class CNames(AsyncioTestCase):
    def test_every_c_function_has_its_c_name(self):
        missing = [name for name in storectx._PROTOTYPES
                   if not hasattr(storectx, name[len("storectx_"):])]
        self.assertEqual(missing, [])

    def test_c_names_work(self):
        buf, addr = buffer(b"s")
        sid = storectx.store_id_new()
        astore = storectx.async_store_new(sid, addr)
        other = storectx.async_store_clone(astore)
        self.assertEqual(storectx.async_store_id(other), sid)
        guard = storectx.install_async(storectx.async_store_write(astore, 1))
        self.assertTrue(storectx.install_guard_installed(guard))
        self.assertStatus(Status.BUSY, storectx.async_store_try_write, other)
        b = storectx.get_current(sid)
        storectx.borrow_release(b)
        seg = storectx.suspend(0)
        self.assertEqual(storectx.suspended_len(seg), 1)
        storectx.resume(seg)
        storectx.uninstall(guard)
        wg = storectx.async_store_try_write(other)
        self.assertEqual(storectx.write_guard_store(wg), addr)
        with wg.install_async():
            pass
        storectx.write_guard_release(None)
        storectx.suspended_free(None)
        storectx.async_store_release(other)
        storectx.async_store_release(astore)


class DocsSnippets(AsyncioTestCase):
    def test_docs_asyncio_snippet_runs(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(DOCS_ASYNCIO, "docs_asyncio", "exec"), {"__name__": "docs_asyncio"})
        self.assertEqual(out.getvalue(), "['a', 'b', 'c']\n")
        self.assertEqual(storectx.depth(), 0)

    def test_docs_python_shows_this_snippet(self):
        try:
            with open(DOCS, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            self.skipTest("no docs/python.md next to bindings/")
        blocks = re.findall(re.escape(SNIPPET_MARK) + r"\n```python\n(.*?)```", text, re.S)
        self.assertIn(DOCS_ASYNCIO, blocks, "docs/python.md's asyncio snippet differs from "
                      "DOCS_ASYNCIO")

if __name__ == "__main__":
    unittest.main(verbosity=2)
