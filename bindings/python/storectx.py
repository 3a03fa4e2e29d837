"""Python binding for libstorectx, through ctypes (standard library only).

libstorectx keeps, for every thread, a stack of store contexts: which store is
"currently active" on this thread while an engine runs guest code.  This module
exposes the whole C API twice:

* ``lib`` -- the raw ``ctypes.CDLL`` with ``argtypes``/``restype`` declared
  for every ``storectx_*`` function.  Handles are the ctypes structures
  ``InstallGuardHandle``, ``BorrowHandle`` and ``PauseGuardHandle`` (one
  ``c_uint64`` field ``raw``); opaque pointers are ``c_void_p``.
* a Pythonic layer -- functions that raise ``StoreCtxError`` instead of
  returning a status, and guard objects that are context managers::

      with storectx.installed(store_id, ctypes.addressof(buf)):
          with storectx.borrowed(store_id) as borrow:
              ...  # borrow.address == ctypes.addressof(buf)

The library is loaded from the path in the ``STORECTX_LIB`` environment
variable if set; else from ``libstorectx.so`` next to this file (where the
wheel built by ``pip install .`` puts it), else by its SONAME
(``libstorectx.so.0.2``) or ``ctypes.util.find_library("storectx")`` from the
loader's search path, else ``libstorectx.so`` from the loader's search path
(``LD_LIBRARY_PATH=target/release`` after ``cargo build --release``).  A
library of another ABI (``storectx_version()`` MAJOR.MINOR while 0.x) is
skipped.

Stacks are per OS thread; a ``threading.Thread`` is an OS thread, so each
Python thread has its own stack.  ctypes releases the GIL during every call,
so a blocking ``AsyncStore.write`` does not stall other Python threads.

Guard objects are never released by the garbage collector, except the owned
heap objects (``AsyncStore`` reference, unconsumed ``WriteGuard``, unresumed
``Suspended``): popping a stack entry from a finalizer would run at an
arbitrary time and on an arbitrary thread.  Use ``with`` blocks.

No object is ever two owners of one C reference: ``copy.copy(AsyncStore)`` is
a ``clone()``; other copies and every pickle of an owning object raise
TypeError.  ``AsyncStore``, ``WriteGuard`` and ``Suspended`` hold their C
reference for the whole of each C call, so closing one on another thread
never frees it under a running call.

asyncio: ``storectx.carried(coro)`` (or ``@storectx.carrying``, or
``loop.set_task_factory(storectx.task_factory)``) makes a task's entries
follow it across its awaits; ``with_entries(fn)`` / ``to_thread(fn)`` lend
them to executor threads; ``AsyncStore.write_async()`` waits without blocking
the loop.  Every C function ``storectx_X`` also has a Python ``X``
(``install_async``, ...).  See docs/python.md.
"""

import contextvars
import ctypes
import ctypes.util
import enum
import functools
import os
import threading
import warnings

__all__ = [
    "lib", "Status", "StoreCtxError",
    "InstallGuardHandle", "BorrowHandle", "PauseGuardHandle",
    "InstallGuard", "Borrow", "PauseGuard", "AsyncStore", "WriteGuard", "Suspended",
    "version", "status_str", "last_error",
    "store_id_new", "is_active", "is_paused", "is_empty", "depth", "active_store", "describe",
    "install", "installed", "get_current", "borrowed", "get_current_transient",
    "get_current_unborrowed", "get_current_async", "pause", "paused", "suspend",
    "WAIT_FOREVER",
    # the C names (storectx_<name>), for the objects' methods
    "uninstall", "install_guard_installed", "async_store_new", "async_store_clone",
    "async_store_release", "async_store_id", "async_store_try_write", "async_store_write",
    "write_guard_store", "write_guard_release", "install_async", "borrow_clone",
    "borrow_release", "unpause", "resume", "suspended_len", "suspended_free",
    # asyncio
    "TaskContext", "carried", "carrying", "task_factory", "with_entries", "to_thread",
    "current_task_context",
]

#: The ABI this binding is written for: the library's MAJOR.MINOR while 0.x
#: (see "Versioning and ABI" in the README). A library of another ABI is skipped.
ABI_VERSION = (0, 2)

#: ``timeout_ns`` value that makes ``storectx_async_store_write`` wait forever.
WAIT_FOREVER = 0xFFFF_FFFF_FFFF_FFFF


# --------------------------------------------------------------------------
# Loading the library
# --------------------------------------------------------------------------

def _abi_of(cdll):
    fn = cdll.storectx_version
    fn.restype = ctypes.c_char_p
    fn.argtypes = []
    parts = fn().decode("ascii", "replace").split(".")
    return tuple(int(p) for p in parts[:2]) if parts[0] == "0" else (int(parts[0]),)


def _abi_wanted():
    return ABI_VERSION if ABI_VERSION[0] == 0 else ABI_VERSION[:1]


def _candidates():
    """Where to look, in order: $STORECTX_LIB alone if set; else next to this
    file (the wheel ships the library there), then the loader's own search
    (ldconfig cache, LD_LIBRARY_PATH) by SONAME, then ``find_library``, then
    the unversioned name that ``cargo build`` writes (``LD_LIBRARY_PATH=target/release``)."""
    path = os.environ.get("STORECTX_LIB")
    if path:
        return [path]
    here = os.path.dirname(os.path.abspath(__file__))
    abi = ".".join(str(p) for p in _abi_wanted())
    return [
        os.path.join(here, "libstorectx.so"),
        "libstorectx.so." + abi,
        ctypes.util.find_library("storectx"),
        "libstorectx.so",
    ]


def _load_library():
    """Open the first libstorectx of this binding's ABI among ``_candidates()``."""
    errors = []
    for name in _candidates():
        if not name or (os.sep in name and not os.path.exists(name)):
            continue
        try:
            cdll = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(str(exc))
            continue
        try:
            abi = _abi_of(cdll)
        except (AttributeError, ValueError) as exc:
            errors.append("%s: not libstorectx (%s)" % (name, exc))
            continue
        if abi != _abi_wanted():
            errors.append("%s: ABI %s, this binding needs %s" % (
                name, ".".join(map(str, abi)), ".".join(map(str, _abi_wanted()))))
            continue
        return cdll
    raise OSError(
        "storectx: cannot load libstorectx %s (tried: %s); install the wheel (pip install .), "
        "set STORECTX_LIB to the path of libstorectx.so, or put its directory on "
        "LD_LIBRARY_PATH" % (".".join(map(str, _abi_wanted())), "; ".join(errors) or "nothing found")
    )


lib = _load_library()


# --------------------------------------------------------------------------
# C types
# --------------------------------------------------------------------------

class _HandleValue:
    """A C handle passed by value: copies are values, as in C (the library
    validates every use: a second use of a used handle is STALE_HANDLE), but
    a handle means nothing outside this process, so it never pickles."""

    def __copy__(self):
        return type(self)(self.raw)

    def __deepcopy__(self, memo):
        return type(self)(self.raw)

    def __reduce_ex__(self, protocol):
        raise TypeError("cannot pickle %s: a libstorectx handle is valid only in the process "
                        "that made it" % type(self).__name__)


class InstallGuardHandle(_HandleValue, ctypes.Structure):
    """``storectx_install_guard``: a validated handle naming one stack entry."""
    _fields_ = [("raw", ctypes.c_uint64)]

    def __repr__(self):
        return "InstallGuardHandle(raw=%#x)" % self.raw


class BorrowHandle(_HandleValue, ctypes.Structure):
    """``storectx_borrow``: a validated handle for one borrow of an entry."""
    _fields_ = [("raw", ctypes.c_uint64)]

    def __repr__(self):
        return "BorrowHandle(raw=%#x)" % self.raw


class PauseGuardHandle(_HandleValue, ctypes.Structure):
    """``storectx_pause_guard``: a validated handle for one pause of an entry."""
    _fields_ = [("raw", ctypes.c_uint64)]

    def __repr__(self):
        return "PauseGuardHandle(raw=%#x)" % self.raw


class _NewReference(ctypes.c_void_p):
    """Return type of ``storectx_async_store_clone``: ctypes hands back an
    instance of this subclass (no conversion to int), which owns the new
    reference until ``AsyncStore._adopt`` takes it -- so a signal handler
    that raises right after the call, before the caller keeps the value,
    drops this object and its ``__del__`` releases the reference."""

    def __del__(self):
        ptr, self.value = self.value, None
        if ptr:
            try:
                lib.storectx_async_store_release(ptr)
            except Exception:  # interpreter shutdown
                pass


_status = ctypes.c_int32
_id = ctypes.c_uint64
_ptr = ctypes.c_void_p
_pptr = ctypes.POINTER(ctypes.c_void_p)
_bool = ctypes.c_bool
_size = ctypes.c_size_t

# name: (restype, argtypes) -- one line per function of include/storectx.h.
_PROTOTYPES = {
    "storectx_status_str": (ctypes.c_char_p, [_status]),
    "storectx_last_error": (ctypes.c_char_p, []),
    "storectx_version": (ctypes.c_char_p, []),

    "storectx_store_id_new": (_id, []),
    "storectx_is_active": (_bool, [_id]),
    "storectx_is_paused": (_bool, [_id]),
    "storectx_is_empty": (_bool, []),
    "storectx_depth": (_size, []),
    "storectx_active_store": (_id, []),
    "storectx_describe": (_size, [ctypes.c_char_p, _size]),

    "storectx_install": (_status, [_id, _ptr, ctypes.POINTER(InstallGuardHandle)]),
    "storectx_uninstall": (_status, [InstallGuardHandle]),
    "storectx_install_guard_installed": (_bool, [InstallGuardHandle]),

    "storectx_async_store_new": (_status, [_id, _ptr, _pptr]),
    "storectx_async_store_clone": (_NewReference, [_ptr]),
    "storectx_async_store_release": (None, [_ptr]),
    "storectx_async_store_id": (_id, [_ptr]),
    "storectx_async_store_try_write": (_status, [_ptr, _pptr]),
    "storectx_async_store_write": (_status, [_ptr, ctypes.c_uint64, _pptr]),
    "storectx_write_guard_store": (_ptr, [_ptr]),
    "storectx_write_guard_release": (None, [_ptr]),
    "storectx_install_async": (_status, [_ptr, ctypes.POINTER(InstallGuardHandle)]),

    "storectx_get_current": (_status, [_id, _pptr, ctypes.POINTER(BorrowHandle)]),
    "storectx_get_current_transient": (_status, [_id, _pptr]),
    "storectx_get_current_unborrowed": (
        _status, [ctypes.POINTER(_id), _pptr, ctypes.POINTER(BorrowHandle)]),
    "storectx_get_current_async": (
        _status, [_id, _pptr, _pptr, ctypes.POINTER(BorrowHandle)]),
    "storectx_borrow_clone": (_status, [BorrowHandle, ctypes.POINTER(BorrowHandle)]),
    "storectx_borrow_release": (_status, [BorrowHandle]),

    "storectx_pause": (_status, [_id, ctypes.POINTER(PauseGuardHandle)]),
    "storectx_unpause": (_status, [PauseGuardHandle]),

    "storectx_suspend": (_status, [_size, _pptr]),
    "storectx_resume": (_status, [_ptr, ctypes.POINTER(_size)]),
    "storectx_suspended_len": (_size, [_ptr]),
    "storectx_suspended_free": (None, [_ptr]),
}

for _name, (_restype, _argtypes) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes
del _name, _restype, _argtypes, _fn


# --------------------------------------------------------------------------
# Status codes and errors
# --------------------------------------------------------------------------

class Status(enum.IntEnum):
    """``storectx_status``: ``Status.PAUSED == STORECTX_ERR_PAUSED`` and so on."""
    OK = 0
    NULL_ARGUMENT = 1
    INVALID_ARGUMENT = 2
    NO_CONTEXT = 3
    NOT_INSTALLED = 4
    PAUSED = 5
    ADDRESS_MISMATCH = 6
    OUT_OF_ORDER = 7
    STALE_HANDLE = 8
    STILL_BORROWED = 9
    NOT_BORROWED = 10
    BORROWED = 11
    NOT_SYNC = 12
    BUSY = 13
    TIMED_OUT = 14
    WOULD_DEADLOCK = 15
    ALREADY_ON_STACK = 16
    PANIC = 17
    EXHAUSTED = 18

    @property
    def c_name(self):
        """The C enumerator's name, e.g. ``"STORECTX_ERR_PAUSED"``."""
        return "STORECTX_OK" if self is Status.OK else "STORECTX_ERR_" + self.name


def status_str(status):
    """``storectx_status_str``: the C name and a short meaning (any int works)."""
    return lib.storectx_status_str(int(status)).decode("utf-8", "replace")


def last_error():
    """``storectx_last_error``: this thread's message for its last failed call."""
    msg = lib.storectx_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


class StoreCtxError(Exception):
    """A libstorectx call failed.

    Attributes: ``status`` (a ``Status``, or a plain int for a code this
    binding does not know), ``name`` (the C name, e.g.
    ``"STORECTX_ERR_OUT_OF_ORDER"``) and ``message`` (``storectx_last_error()``
    of the failing call, e.g. ``"uninstall: guard for store 7 is at depth 1,
    top is store 9 at depth 3"``).
    """

    def __init__(self, status, name, message):
        super().__init__(status, name, message)
        self.status = status
        self.name = name
        self.message = message

    def __str__(self):
        return "%s: %s" % (self.name, self.message) if self.message else self.name


def _error(status):
    """Build the StoreCtxError for a failed status, on the failing thread."""
    message = last_error()  # read first: it belongs to this thread's last failure
    try:
        status = Status(status)
        name = status.c_name
    except ValueError:
        name = status_str(status).split(":")[0].split()[0] or "STORECTX_ERR_%d" % status
    return StoreCtxError(status, name, message)


def _check(status):
    if status != Status.OK:
        raise _error(status)


# --------------------------------------------------------------------------
# Identity and inspection
# --------------------------------------------------------------------------

def version():
    """The library's version, ``"MAJOR.MINOR.PATCH"``."""
    return lib.storectx_version().decode("ascii")


def store_id_new():
    """A fresh, nonzero, never-reused store id."""
    return lib.storectx_store_id_new()


def is_active(store_id):
    """True if ``store_id`` is the top entry of this thread's stack."""
    return lib.storectx_is_active(store_id)


def is_paused(store_id):
    """True if ``store_id`` is on this thread's stack but not on top."""
    return lib.storectx_is_paused(store_id)


def is_empty():
    """True if this thread's stack has no entry."""
    return lib.storectx_is_empty()


def depth():
    """Number of entries on this thread's stack."""
    return lib.storectx_depth()


def active_store():
    """The store id of the top entry, 0 when the stack is empty."""
    return lib.storectx_active_store()


def describe():
    """This thread's stack as text, one line per entry, top first."""
    need = lib.storectx_describe(None, 0)
    while True:
        buf = ctypes.create_string_buffer(need + 1)
        got = lib.storectx_describe(buf, len(buf))
        if got <= need:
            return buf.value.decode("utf-8", "replace")
        need = got


# --------------------------------------------------------------------------
# Guards
# --------------------------------------------------------------------------

class _SingleOwner:
    """Refuses copy.copy, copy.deepcopy and pickle with a TypeError naming the
    class and saying why (``_owns``): the object owns one C object or stack
    entry, which must be given back exactly once, and a pickle would carry a
    pointer or handle out of the process that made it."""

    _owns = "a libstorectx object"

    def _refuse(self, what):
        raise TypeError("cannot %s %s: it owns %s, which has exactly one owner (two would give "
                        "it back twice)" % (what, type(self).__name__, self._owns))

    def __copy__(self):
        self._refuse("copy")

    def __deepcopy__(self, memo):
        self._refuse("deepcopy")

    def __reduce_ex__(self, protocol):
        raise TypeError("cannot pickle %s: it owns %s, valid only in the process that made it"
                        % (type(self).__name__, self._owns))


class InstallGuard(_SingleOwner):
    """An installed stack entry (``storectx_install_guard``).

    A context manager: leaving the ``with`` block uninstalls it.  ``handle``
    is the C handle; it stays valid when the entry is suspended and resumed on
    another thread.  Not copyable, not picklable (one owner per entry).
    """

    _owns = "one stack entry (uninstalled once)"

    def __init__(self, handle, store_id):
        self.handle = handle
        self.store_id = store_id
        self._task = _current_context.get()  # the carried task it was made in

    @property
    def installed(self):
        """True iff this guard names an entry on this thread's stack
        (false for the no-op guard of a store already on top as async)."""
        return lib.storectx_install_guard_installed(self.handle)

    def uninstall(self):
        """Pop the entry; it must be on top with no live borrow."""
        _check_in_task(self, lib.storectx_uninstall)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.uninstall()
        return False

    def __repr__(self):
        return "InstallGuard(store_id=%d, raw=%#x)" % (self.store_id, self.handle.raw)


class Borrow(_SingleOwner):
    """A borrow of the current store (``storectx_borrow``).

    ``address`` is the store's address as an int.  For a borrow from
    ``get_current_unborrowed``, ``store_id`` is the top entry's id; for one
    from ``get_current_async``, ``async_store`` is the entry's ``AsyncStore``
    (a new reference) or None for a sync entry.  A context manager: leaving
    the ``with`` block releases the borrow.  Not copyable, not picklable;
    ``clone()`` takes a second borrow.
    """

    _owns = "one borrow of a stack entry (released once)"

    def __init__(self, handle, store_id, address, async_store=None):
        self.handle = handle
        self.store_id = store_id
        self.address = address
        self.async_store = async_store
        self._task = _current_context.get()

    def clone(self):
        """A second borrow of the same (sync, top) entry."""
        out = BorrowHandle()

        def make():
            _check(lib.storectx_borrow_clone(self.handle, ctypes.byref(out)))
            return Borrow(out, self.store_id, self.address)

        return _made(out, lib.storectx_borrow_release, make)

    def release(self):
        """Give the borrow back; its entry must be on top."""
        _check_in_task(self, lib.storectx_borrow_release)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def __repr__(self):
        return "Borrow(store_id=%d, address=%#x, raw=%#x)" % (
            self.store_id, self.address or 0, self.handle.raw)


class PauseGuard(_SingleOwner):
    """A pause of the top entry's borrow while guest code runs
    (``storectx_pause_guard``).  A context manager: leaving the ``with`` block
    unpauses.  Not copyable, not picklable."""

    _owns = "one pause of a stack entry (unpaused once)"

    def __init__(self, handle, store_id):
        self.handle = handle
        self.store_id = store_id
        self._task = _current_context.get()

    def unpause(self):
        """Restore the borrow count; the entry must be on top again."""
        _check_in_task(self, lib.storectx_unpause)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.unpause()
        return False

    def __repr__(self):
        return "PauseGuard(store_id=%d, raw=%#x)" % (self.store_id, self.handle.raw)


def _made(out, undo, make):
    """``make()`` the Python object for the handle ``out`` that a C call just
    wrote; if an exception comes first -- the call's own error, or one a
    signal handler raised right after the call returned -- and the call did
    make the handle (nonzero: out-parameters are written on success only),
    give it back with ``undo(out)`` so that the call changes nothing."""
    try:
        return make()
    except BaseException:
        if out.raw:
            undo(out)
        raise


def _check_in_task(guard, c_function):
    """``c_function(guard.handle)``, checked. If it answers STALE_HANDLE for a
    guard made in a carried task whose coroutine is being closed outside its
    carrying (the garbage collector finalizing a pending task closes the
    task's coroutine first, in an order Python does not define), the entries
    are parked in the task's context: the call is made again with them
    lent to this thread, so the coroutine's with-blocks unwind them."""
    status = c_function(guard.handle)
    if status == Status.STALE_HANDLE and guard._task is not None:
        error = _error(status)
        status = guard._task._lend_to_closing(lambda: c_function(guard.handle))
        if status is None:
            raise error
    _check(status)


def install(store_id, address):
    """Push a sync entry for ``store_id`` at ``address`` (an int, e.g.
    ``ctypes.addressof(buf)``) and return its ``InstallGuard``."""
    out = InstallGuardHandle()

    def make():
        _check(lib.storectx_install(store_id, address, ctypes.byref(out)))
        return InstallGuard(out, store_id)

    return _made(out, lib.storectx_uninstall, make)


def installed(store_id, address):
    """``with storectx.installed(id, address) as guard:`` -- install for the
    duration of the block (the install happens at the call)."""
    return install(store_id, address)


def get_current(store_id):
    """Borrow ``store_id``, which must be the top entry; returns a ``Borrow``."""
    store = ctypes.c_void_p()
    out = BorrowHandle()

    def make():
        _check(lib.storectx_get_current(store_id, ctypes.byref(store), ctypes.byref(out)))
        return Borrow(out, store_id, store.value)

    return _made(out, lib.storectx_borrow_release, make)


def borrowed(store_id):
    """``with storectx.borrowed(id) as b:`` -- ``get_current`` for the block."""
    return get_current(store_id)


def get_current_transient(store_id):
    """The address of ``store_id`` (must be on top), without taking a borrow."""
    store = ctypes.c_void_p()
    _check(lib.storectx_get_current_transient(store_id, ctypes.byref(store)))
    return store.value


def get_current_unborrowed():
    """Borrow the top entry whatever its id, if it has no borrow yet."""
    store_id = ctypes.c_uint64()
    store = ctypes.c_void_p()
    out = BorrowHandle()

    def make():
        _check(lib.storectx_get_current_unborrowed(
            ctypes.byref(store_id), ctypes.byref(store), ctypes.byref(out)))
        return Borrow(out, store_id.value, store.value)

    return _made(out, lib.storectx_borrow_release, make)


def get_current_async(store_id):
    """Like ``get_current``; the borrow's ``async_store`` is the entry's
    ``AsyncStore`` (a new reference) or None for a sync entry."""
    wrapper = AsyncStore._adopt(None)  # owns the new reference as soon as C writes it
    store = ctypes.c_void_p()
    out = BorrowHandle()

    def make():
        _check(lib.storectx_get_current_async(
            store_id, ctypes.byref(wrapper._cell), ctypes.byref(store), ctypes.byref(out)))
        return Borrow(out, store_id, store.value, wrapper if wrapper._ptr else None)

    try:
        return _made(out, lib.storectx_borrow_release, make)
    except BaseException:
        wrapper.close()
        raise


def pause(store_id):
    """Pause ``store_id``'s borrow (it must be on top); returns a ``PauseGuard``."""
    out = PauseGuardHandle()

    def make():
        _check(lib.storectx_pause(store_id, ctypes.byref(out)))
        return PauseGuard(out, store_id)

    return _made(out, lib.storectx_unpause, make)


def paused(store_id):
    """``with storectx.paused(id):`` -- pause for the duration of the block."""
    return pause(store_id)


# --------------------------------------------------------------------------
# Async stores and write guards
# --------------------------------------------------------------------------

class _Cell:
    """An owned C pointer kept in a ``ctypes.c_void_p`` (``_cell``) that the C
    call producing it writes into directly (``ctypes.byref(obj._cell)``): the
    object owns the reference from the instant the C function returns, so an
    exception raised right after the call (a signal handler -- Ctrl-C, a
    SIGALRM timeout -- runs between the C call and the next Python line)
    never loses it; the object's ``__del__`` gives it back."""

    @property
    def _ptr(self):
        return self._cell.value

    @_ptr.setter
    def _ptr(self, value):
        self._cell.value = value


#: ``storectx_resume`` writes a real depth over it on success only.
_NO_DEPTH = ctypes.c_size_t(-1).value


class AsyncStore(_Cell, _SingleOwner):
    """A reference to a ``storectx_async_store``: a store behind a write lock.

    ``AsyncStore(store_id, address)`` creates one; ``clone()`` (or
    ``copy.copy()``) takes another reference; ``close()`` (also on ``with``
    exit and in ``__del__``) drops this one.  The store lives while any
    reference, write guard, entry or suspended segment refers to it.

    Thread-safe: any method may be called from any thread, concurrently.  A
    method holds this object's reference for the whole C call, so ``close()``
    on another thread while, say, ``write()`` waits for the lock does not free
    the store under it: ``close()`` returns at once, refuses new calls
    (``ValueError``), and the reference is dropped when the last call in
    flight returns.  ``copy.deepcopy`` and ``pickle`` are refused (TypeError):
    the store is your object at a fixed address, and the reference is a
    pointer valid only in this process.
    """

    _owns = "a reference to a C storectx_async_store"

    def __init__(self, store_id, address):
        self._init(None)
        # written into self._cell: an exception after the call leaves the
        # reference owned by this half-made object, whose __del__ releases it
        _check(lib.storectx_async_store_new(store_id, address, ctypes.byref(self._cell)))

    def _init(self, ptr):
        self._cell = ctypes.c_void_p(ptr)
        self._lock = threading.Lock()
        self._users = 0        # calls in flight on self._ptr
        self._closing = False  # close() was called; the last user releases

    @classmethod
    def _adopt(cls, ptr):
        """Wrap a reference the caller already owns (an int, None, or a
        ``_NewReference``, which becomes this object's cell)."""
        self = cls.__new__(cls)
        self._init(None)
        if isinstance(ptr, _NewReference):
            self._cell = ptr
        else:
            self._ptr = ptr
        return self

    def _enter(self):
        """Start a call: the reference stays held until ``_leave()``."""
        with self._lock:
            if self._ptr is None or self._closing:
                raise ValueError("storectx: AsyncStore is closed")
            self._users += 1
            return ctypes.c_void_p(self._ptr)

    def _leave(self):
        with self._lock:
            self._users -= 1
            if self._users or not self._closing or self._ptr is None:
                return
            ptr, self._ptr = self._ptr, None
        lib.storectx_async_store_release(ctypes.c_void_p(ptr))

    @property
    def closed(self):
        """True once ``close()`` was called (new calls are refused)."""
        return self._closing or self._ptr is None

    @property
    def id(self):
        """The store id given at creation."""
        ptr = self._enter()
        try:
            return lib.storectx_async_store_id(ptr)
        finally:
            self._leave()

    def clone(self):
        """A new reference to the same async store."""
        ptr = self._enter()
        try:
            return AsyncStore._adopt(lib.storectx_async_store_clone(ptr))
        finally:
            self._leave()

    def __copy__(self):
        """``copy.copy(store)``: a new reference (``clone()``), its own owner."""
        return self.clone()

    def __deepcopy__(self, memo):
        raise TypeError("cannot deepcopy AsyncStore: the store behind it is your object at a fixed "
                        "address, which no copy duplicates; use clone() or copy.copy() for another "
                        "reference to the same store")

    def try_write(self):
        """Take the write lock without waiting; ``BUSY`` if it is held."""
        ptr = self._enter()
        try:
            guard = WriteGuard(None, None)  # owns the lock as soon as C writes it
            try:
                _check(lib.storectx_async_store_try_write(ptr, ctypes.byref(guard._cell)))
                guard.store_id = lib.storectx_async_store_id(ptr)
            except BaseException:
                guard.release()  # interrupted after the lock was taken: give it back
                raise
            return guard
        finally:
            self._leave()

    def write(self, timeout=None):
        """Take the write lock, waiting up to ``timeout`` seconds (None: forever;
        0: try once).  ``TIMED_OUT`` after the timeout, ``WOULD_DEADLOCK`` if
        this thread's own stack holds the lock.  The GIL is released while
        waiting, but the wait cannot be interrupted (Ctrl-C, or ``close()`` on
        another thread: the wait goes on; the reference is dropped after it).
        In asyncio, ``await write_async()`` instead."""
        if timeout is None:
            timeout_ns = WAIT_FOREVER
        else:
            timeout_ns = min(max(int(timeout * 1e9), 0), WAIT_FOREVER - 1)
        ptr = self._enter()
        try:
            guard = WriteGuard(None, None)  # owns the lock as soon as C writes it
            try:
                _check(lib.storectx_async_store_write(ptr, timeout_ns, ctypes.byref(guard._cell)))
                guard.store_id = lib.storectx_async_store_id(ptr)
            except BaseException:
                guard.release()  # e.g. Ctrl-C during the wait: the lock is not kept
                raise
            return guard
        finally:
            self._leave()

    async def write_async(self, timeout=None):
        """``await store.write_async(timeout)``: ``write()`` for asyncio -- waits
        for the lock without blocking the event loop (tries, then sleeps with
        a growing back-off, 0.5 ms to 20 ms), so the task holding the lock
        can run and release it.  ``WOULD_DEADLOCK`` at once if this thread's
        stack (in a carried task: the task's own entries) holds the lock;
        ``TIMED_OUT`` after ``timeout`` seconds (None: no limit).  Cancelling
        the awaiting task leaves nothing locked."""
        import asyncio  # noqa: PLC0415 -- only asyncio users pay for it

        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(timeout, 0)
        delay = 0.0005
        while True:
            try:
                return self.write(0)
            except StoreCtxError as err:
                if err.status != Status.TIMED_OUT:
                    raise
                if deadline is not None and loop.time() >= deadline:
                    raise
            wait = delay if deadline is None else min(delay, max(deadline - loop.time(), 0))
            await asyncio.sleep(wait)
            delay = min(delay * 2, 0.02)

    async_store_write_async = write_async

    def close(self):
        """Drop this reference (idempotent).  Calls in flight on other threads
        keep it until they return; the last one drops it."""
        with self._lock:
            if self._ptr is None or self._closing:
                return
            self._closing = True
            if self._users:
                return
            ptr, self._ptr = self._ptr, None
        lib.storectx_async_store_release(ctypes.c_void_p(ptr))

    release = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: lib may already be gone
            pass

    def __repr__(self):
        try:
            return "AsyncStore(id=%d)" % self.id
        except ValueError:
            return "AsyncStore(closed)"


class WriteGuard(_Cell, _SingleOwner):
    """An owned write lock on an async store (``storectx_write_guard *``).

    ``install()`` (alias ``install_async()``) pushes it as an async entry and
    consumes it (uninstalling that entry unlocks).  Otherwise ``release()``
    unlocks -- also on ``with`` exit and in ``__del__``, from any thread.

    Thread-safe: calls from several threads are serialized, so ``release()``
    on one thread while ``install()`` runs on another waits for it (and is
    then a no-op if the install consumed the guard).  Not copyable, not
    picklable: the lock has one owner.
    """

    _owns = "a store's write lock (a C storectx_write_guard)"

    def __init__(self, ptr, store_id):
        self._cell = ctypes.c_void_p(ptr)
        self._lock = threading.Lock()
        self.store_id = store_id

    @property
    def owned(self):
        """False once released or consumed by ``install()``."""
        return self._ptr is not None

    @property
    def store(self):
        """The store's address (None once released or consumed)."""
        with self._lock:
            if self._ptr is None:
                return None
            return lib.storectx_write_guard_store(ctypes.c_void_p(self._ptr))

    def install(self):
        """``storectx_install_async``: push the async entry and return its
        ``InstallGuard``.  On failure (e.g. ``ALREADY_ON_STACK``) the guard is
        still owned by this object."""
        out = InstallGuardHandle()  # nonzero once the C call has succeeded
        try:
            with self._lock:
                if self._ptr is None:
                    raise ValueError("storectx: WriteGuard was already released or installed")
                _check(lib.storectx_install_async(ctypes.c_void_p(self._ptr), ctypes.byref(out)))
                self._ptr = None  # consumed by the entry
            return InstallGuard(out, self.store_id)
        except BaseException:
            if out.raw:
                # Installed, then interrupted before the caller got the guard
                # (a signal handler raised): undo, so the call changes nothing
                # -- the entry goes, and the lock with it.
                self._ptr = None
                lib.storectx_uninstall(out)
            raise

    install_async = install

    def release(self):
        """Unlock (idempotent; a no-op once installed)."""
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.storectx_write_guard_release(ctypes.c_void_p(ptr))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def __del__(self):
        try:
            self.release()
        except Exception:
            pass

    def __repr__(self):
        return "WriteGuard(store_id=%s, %s)" % (
            self.store_id, "owned" if self._ptr is not None else "released")


# --------------------------------------------------------------------------
# Suspend and resume
# --------------------------------------------------------------------------

class Suspended(_Cell, _SingleOwner):
    """A detached segment of stack entries (``storectx_suspended *``).

    Made by ``suspend(base_depth)``; ``resume()`` on any thread pushes the
    entries back and consumes it.  ``free()`` (also in ``__del__`` if never
    resumed) cancels it: the entries are dropped, their write locks released
    and their handles become stale.

    Thread-safe: calls from several threads are serialized (``free()`` while
    ``resume()`` runs elsewhere waits, then finds it consumed).  Not copyable,
    not picklable: the segment has one owner.
    """

    _owns = "a detached segment of stack entries (a C storectx_suspended)"

    def __init__(self, ptr):
        self._cell = ctypes.c_void_p(ptr)
        self._lock = threading.Lock()

    @property
    def pending(self):
        """True until resumed or freed."""
        return self._ptr is not None

    def __len__(self):
        with self._lock:
            if self._ptr is None:
                return 0
            return lib.storectx_suspended_len(ctypes.c_void_p(self._ptr))

    def resume(self):
        """Push the entries back on this thread's stack and return the depth
        they start at (the base depth for the next ``suspend``).  On failure
        (``ALREADY_ON_STACK``) the segment is untouched and still owned."""
        base = ctypes.c_size_t(_NO_DEPTH)  # a real depth once the C call has succeeded
        try:
            with self._lock:
                if self._ptr is None:
                    raise ValueError("storectx: Suspended was already resumed or freed")
                _check(lib.storectx_resume(ctypes.c_void_p(self._ptr), ctypes.byref(base)))
                self._ptr = None
            return base.value
        except BaseException:
            if base.value != _NO_DEPTH:
                # Resumed, then interrupted before the caller got the base: the
                # entries are detached again into this (still pending) segment.
                self._ptr = None
                lib.storectx_suspend(base.value, ctypes.byref(self._cell))
            raise

    def free(self):
        """Cancel the segment (idempotent)."""
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.storectx_suspended_free(ctypes.c_void_p(ptr))

    def __del__(self):
        try:
            self.free()
        except Exception:
            pass

    def __repr__(self):
        return "Suspended(len=%d)" % len(self) if self._ptr is not None else "Suspended(done)"


def suspend(base_depth):
    """Detach every entry above ``base_depth`` (the depth recorded when the
    coroutine started or resumed) into a ``Suspended`` segment."""
    segment = Suspended(None)  # owns the entries as soon as C writes the segment
    try:
        _check(lib.storectx_suspend(base_depth, ctypes.byref(segment._cell)))
    except BaseException:
        if segment.pending:  # detached, then interrupted: put them back
            try:
                segment.resume()
            except StoreCtxError:
                segment.free()
        raise
    return segment


# --------------------------------------------------------------------------
# The C names
# --------------------------------------------------------------------------
# Each C function has a Python function of the same name without the
# ``storectx_`` prefix: storectx_install_async(g) is install_async(g), and so
# on. They call the objects' methods (which stay the primary API).

def uninstall(guard):
    """``storectx_uninstall``: ``guard.uninstall()``."""
    guard.uninstall()


def install_guard_installed(guard):
    """``storectx_install_guard_installed``: ``guard.installed``."""
    return guard.installed


def async_store_new(store_id, address):
    """``storectx_async_store_new``: ``AsyncStore(store_id, address)``."""
    return AsyncStore(store_id, address)


def async_store_clone(store):
    """``storectx_async_store_clone``: ``store.clone()``."""
    return store.clone()


def async_store_release(store):
    """``storectx_async_store_release``: ``store.close()`` (None is fine)."""
    if store is not None:
        store.close()


def async_store_id(store):
    """``storectx_async_store_id``: ``store.id``."""
    return store.id


def async_store_try_write(store):
    """``storectx_async_store_try_write``: ``store.try_write()``."""
    return store.try_write()


def async_store_write(store, timeout=None):
    """``storectx_async_store_write``: ``store.write(timeout)`` (seconds)."""
    return store.write(timeout)


def write_guard_store(guard):
    """``storectx_write_guard_store``: ``guard.store``."""
    return guard.store


def write_guard_release(guard):
    """``storectx_write_guard_release``: ``guard.release()`` (None is fine)."""
    if guard is not None:
        guard.release()


def install_async(write_guard):
    """``storectx_install_async``: push ``write_guard`` as an async entry
    (consuming it) and return the ``InstallGuard``:
    ``with storectx.install_async(store.write()):``."""
    return write_guard.install()


def borrow_clone(borrow):
    """``storectx_borrow_clone``: ``borrow.clone()``."""
    return borrow.clone()


def borrow_release(borrow):
    """``storectx_borrow_release``: ``borrow.release()``."""
    borrow.release()


def unpause(pause_guard):
    """``storectx_unpause``: ``pause_guard.unpause()``."""
    pause_guard.unpause()


def resume(segment):
    """``storectx_resume``: ``segment.resume()``; returns the base depth."""
    return segment.resume()


def suspended_len(segment):
    """``storectx_suspended_len``: ``len(segment)``."""
    return len(segment)


def suspended_free(segment):
    """``storectx_suspended_free``: ``segment.free()`` (None is fine)."""
    if segment is not None:
        segment.free()


# --------------------------------------------------------------------------
# asyncio: the entries follow the task
# --------------------------------------------------------------------------
# An asyncio task runs in steps on the event loop's thread; between steps
# (at each await that suspends) other tasks run there. A task's entries must
# not stay on that thread between its steps: carried() drives the task's
# coroutine step by step, putting the task's entries back on the thread
# (storectx_resume) before each step and detaching them (storectx_suspend)
# after it, into the task's TaskContext. It works for any awaitable and any
# asyncio event loop: it only wraps send()/throw()/close().

_PARKED, _HELD, _DONE = "parked", "held", "done"

_current_context = contextvars.ContextVar("storectx_task_context", default=None)


class TaskContext(_SingleOwner):
    """The entries of one carried task while it is suspended.

    ``carried()`` makes one per task and drives it; ``with_entries(fn)``
    lends the entries to ``fn`` on another thread (an executor) while the
    task awaits.  The entries are in exactly one place at a time: on the
    thread running a step of the task, on the thread running a
    ``with_entries`` function, or parked here.  Thread-safe (a lock and a
    condition); not copyable, not picklable.
    """

    _owns = "the entries of a suspended task"

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._state = _PARKED
        self._segment = None   # Suspended while parked with entries
        self._holder = None    # thread id holding the entries
        self._wakers = []      # called (under the lock) when parked again
        self._below = None     # store id just below the base while held
        self._task = None      # the asyncio task stepping it (None: by hand)
        self._coro = None      # the coroutine it carries

    @property
    def carried(self):
        """Number of entries parked (0 while a thread holds them)."""
        with self._cond:
            return len(self._segment) if self._segment is not None else 0

    @property
    def state(self):
        """``"parked"``, ``"held"`` (by the thread in ``holder``) or ``"done"``."""
        return self._state

    @property
    def holder(self):
        """The ``threading.get_ident()`` of the thread holding the entries."""
        return self._holder

    def _held_here(self):
        return self._state == _HELD and self._holder == threading.get_ident()

    def _acquire(self, waker=None, block=True):
        """Put the task's entries on top of this thread's stack and return
        the base depth they start at.  While another thread holds them:
        with ``waker``, register it (called when they are parked again) and
        return None; with ``block=False``, return None; else wait until
        they are parked.  ALREADY_ON_STACK from the resume leaves them
        parked."""
        with self._cond:
            while self._state == _HELD:
                if waker is not None:
                    self._wakers.append(waker)
                    return None
                if not block:
                    return None
                self._cond.wait()
            if self._state == _DONE:
                raise RuntimeError("storectx: the task has ended; it has no entries to lend")
            self._state, self._holder = _HELD, threading.get_ident()
            segment, self._segment = self._segment, None
        self._below = active_store()  # what _release() expects under the base
        if segment is None:
            return depth()
        try:
            return segment.resume()
        except BaseException:
            with self._cond:
                self._segment = segment
                self._park_locked()
            raise

    def _park_locked(self):
        self._state, self._holder = _PARKED, None
        self._cond.notify_all()
        wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()

    def _release(self, base):
        """Detach the entries above ``base`` from this thread into the
        context.  If the stack is below ``base``, or the entry under the base
        is not the one that was there when the entries came (the task popped
        entries that were not its own, and maybe pushed others in their
        place), raises INVALID_ARGUMENT after parking what is above ``base``."""
        segment = None
        below = self._below
        try:
            if depth() != base:
                segment = suspend(base)
            if below is not None and active_store() != below:
                raise StoreCtxError(
                    Status.INVALID_ARGUMENT, Status.INVALID_ARGUMENT.c_name,
                    "carried task: the entry under the task's base is store %d, was store %d "
                    "when its step began: the step popped an entry that was not its own "
                    "(and pushed another in its place, which stays on this thread)"
                    % (active_store(), below))
        finally:
            # parked whatever happens (also when a signal handler raises in
            # the suspend, which then left the entries on this thread): a
            # context left "held" would make every later acquire wait for ever
            with self._cond:
                self._segment = segment
                self._park_locked()

    def _lend_to_closing(self, call):
        """``call()`` with the entries lent to this thread, if the task's
        coroutine is running outside its carrying (being closed by the
        garbage collector or by hand) and the entries are parked; its
        status, or None if not lent."""
        coro = self._coro
        running = getattr(coro, "cr_running", False) or getattr(coro, "gi_running", False)
        if not running or self._state != _PARKED:
            return None
        try:
            base = self._acquire(block=False)
        except (StoreCtxError, RuntimeError):
            return None
        if base is None:
            return None
        try:
            return call()
        finally:
            try:
                self._release(base)
            except StoreCtxError:
                pass

    def _drop(self):
        """Free the parked entries (their locks released)."""
        with self._cond:
            segment, self._segment = self._segment, None
        if segment is not None:
            segment.free()

    def _finish(self, base):
        """The task ended on this thread: whatever it left above ``base`` is
        freed (locks released), and the context is done.  Returns how many
        entries were left."""
        left = 0
        if depth() > base:
            try:
                segment = suspend(base)
                left = len(segment)
                segment.free()
            except StoreCtxError:
                pass
        with self._cond:
            self._segment = None
            self._state = _DONE
            self._holder = None
            self._cond.notify_all()
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()
        return left


def current_task_context():
    """The ``TaskContext`` of the carried task running on this thread, or
    None outside one."""
    return _own_context()


def _own_context():
    """The TaskContext in this contextvars context, if it is the running
    task's: a task created inside a carried task (not carried itself) runs
    in a copy of the creator's context, where the variable still names the
    creator's TaskContext, which is not that task's to use."""
    ctx = _current_context.get()
    if ctx is None or ctx._task is None or ctx._held_here():
        return ctx
    current = _task_or_none()
    if current is not None and current is not ctx._task:
        return None
    return ctx


def _task_or_none():
    import asyncio  # noqa: PLC0415

    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop on this thread
        return None


def _waiter(loop):
    """An asyncio future on ``loop`` and a thread-safe callable that sets it."""
    fut = loop.create_future()

    def wake():
        def set_it():
            if not fut.done():
                fut.set_result(None)
        try:
            loop.call_soon_threadsafe(set_it)
        except RuntimeError:  # the loop is closed
            pass

    return fut, wake


def _drive(awaitable, ctx):
    """The generator behind ``carried()``: steps ``awaitable`` with the
    task's entries on the stepping thread, parks them between steps."""
    it = awaitable.__await__()
    ctx._coro = awaitable
    to_send, to_throw = None, None
    while True:
        # The entries come back to this thread. If a with_entries() function
        # still has them on another thread (the task was cancelled while it
        # ran), wait for it without blocking the loop.
        while True:
            fut = None
            try:
                base = ctx._acquire(block=False)
                if base is None:
                    loop = _loop_or_none()
                    if loop is None:  # stepped by hand, not by an event loop
                        base = ctx._acquire()
                    else:
                        fut, wake = _waiter(loop)
                        base = ctx._acquire(waker=wake)
            except StoreCtxError as err:
                # ALREADY_ON_STACK: this thread has one of the task's stores;
                # the entries are dropped (locks released), as C++ carry()
                # does, and the error reaches the coroutine.
                ctx._drop()
                to_throw = err
                continue
            if base is not None:
                break
            try:
                yield from fut
            except GeneratorExit:
                _close(it, ctx, ctx._acquire())  # closed while waiting: wait here
                raise
            except BaseException as exc:  # noqa: B902 -- delivered with the entries
                if to_throw is None:
                    to_throw = exc
        token = _current_context.set(ctx)
        if ctx._task is None:
            ctx._task = _task_or_none()
        try:
            if to_throw is not None:
                exc, to_throw = to_throw, None
                throw = getattr(it, "throw", None)
                if throw is None:  # an iterator without throw(): raised here, as
                    raise exc      # a coroutine's `await` of it does
                yielded = throw(exc)
            elif to_send is None:  # next(): also an iterator without send()
                yielded = next(it)
            else:
                yielded = it.send(to_send)
        except BaseException as exc:  # noqa: B902 -- returned or raised: the task is over
            _current_context.reset(token)
            _end(ctx, base, exc)
            if isinstance(exc, StopIteration):
                return exc.value
            raise
        try:
            ctx._release(base)
        except StoreCtxError as err:  # popped below its base: tell the coroutine
            to_throw = err
            continue
        except BaseException:  # noqa: B902 -- interrupted (a signal handler raised)
            # The coroutine is suspended but cannot be stepped again (this
            # exception ends the task): close it with its entries, free the rest.
            _close(it, ctx, _acquire_here(ctx, base))
            raise
        finally:
            _current_context.reset(token)
        try:
            to_send = yield yielded
        except GeneratorExit:
            _close(it, ctx, ctx._acquire())
            raise
        except BaseException as exc:  # noqa: B902 -- thrown in (cancel): delivered next step
            to_send, to_throw = None, exc


def _acquire_here(ctx, base):
    """The entries for closing a task whose bookkeeping was interrupted: on
    this thread already (the interrupted suspend put them back), or parked."""
    if depth() > base:
        with ctx._cond:
            ctx._state, ctx._holder = _HELD, threading.get_ident()
        return base
    try:
        return ctx._acquire()
    except StoreCtxError:  # cannot come back here: dropped (locks released)
        ctx._drop()
        return depth()


def _loop_or_none():
    import asyncio  # noqa: PLC0415

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _end(ctx, base, exc):
    left = ctx._finish(base)
    if left:
        warnings.warn("storectx: a carried task ended with %d entr%s of its own on the stack; "
                      "freed them (write locks released): use with-blocks"
                      % (left, "y" if left == 1 else "ies"), ResourceWarning, stacklevel=3)


def _close(it, ctx, base):
    """Close the coroutine with its entries on this thread (its finally
    blocks and with-blocks unwind them), then free what is left."""
    token = _current_context.set(ctx)
    try:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    finally:
        _current_context.reset(token)
        _end(ctx, base, None)


class _Driver:
    __slots__ = ("_awaitable", "_ctx")

    def __init__(self, awaitable, ctx):
        self._awaitable = awaitable
        self._ctx = ctx

    def __await__(self):
        return _drive(self._awaitable, self._ctx)


async def _carried(awaitable, ctx):
    return await _Driver(awaitable, ctx)


def carried(awaitable):
    """A coroutine that awaits ``awaitable`` (a coroutine or any awaitable)
    with its entries carried as a task: every entry it pushes stays with it
    across its awaits -- detached from the event loop's thread while it is
    suspended, back on top of the stack (of whatever thread steps it) when
    it resumes -- so interleaved tasks never see one another's entries.
    When it ends (returns, raises, is cancelled or closed) its with-blocks
    have unwound their entries on the stepping thread; anything left is
    freed (locks released, ResourceWarning) so nothing stays on the loop's
    thread.  Use it where a task starts::

        asyncio.create_task(storectx.carried(handler(store)))
        asyncio.run(storectx.carried(main()))

    or decorate the coroutine function (``@storectx.carrying``), or carry
    every task of a loop (``loop.set_task_factory(storectx.task_factory)``).
    One context per task: coroutines the task awaits inline share it; a
    ``carried()`` awaited inside a carried task is a child with its own
    entries, on top of the parent's while it runs."""
    return _carried(awaitable, TaskContext())


def _is_carried(coro):
    return getattr(coro, "cr_code", None) is _carried.__code__


def carrying(coroutine_function):
    """Decorator: ``@storectx.carrying async def handler(...)`` -- each call
    returns ``carried(handler(...))``."""

    @functools.wraps(coroutine_function)
    def start(*args, **kwargs):
        return carried(coroutine_function(*args, **kwargs))

    return start


def task_factory(loop, coro, **kwargs):
    """For ``loop.set_task_factory(storectx.task_factory)``: every task the
    loop creates runs ``carried(coro)`` (a coroutine already carried is not
    wrapped twice)."""
    import asyncio  # noqa: PLC0415

    if not _is_carried(coro):
        coro = carried(coro)
    return asyncio.Task(coro, loop=loop, **kwargs)


def with_entries(fn):
    """``fn`` wrapped to run with the calling task's entries, on whatever
    thread calls it -- for ``loop.run_in_executor(None, with_entries(fn))``
    and ``asyncio.to_thread(with_entries(fn))``.  Call it inside a carried
    task.  The wrapper waits until the task has parked its entries (it
    awaits the executor), puts them on top of the executor thread's stack,
    runs ``fn``, and parks them again (with any entries ``fn`` left, which
    follow the task) before it returns.  If the task is cancelled meanwhile,
    its next step waits (without blocking the loop) for ``fn`` to return, so
    the entries are back before the CancelledError reaches it.  Called on
    the task's own step, it just calls ``fn``."""
    ctx = _own_context()
    if ctx is None:
        raise RuntimeError("storectx.with_entries: not inside a carried task (see "
                           "storectx.carried, storectx.task_factory); a task created "
                           "inside one is not carried unless it is carried() itself")

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if ctx._held_here():
            return fn(*args, **kwargs)
        base = ctx._acquire()
        token = _current_context.set(ctx)
        try:
            return fn(*args, **kwargs)
        finally:
            _current_context.reset(token)
            ctx._release(base)

    return run


def to_thread(fn, *args, **kwargs):
    """``asyncio.to_thread`` with the task's entries: returns a coroutine
    that runs ``fn(*args, **kwargs)`` on the loop's default executor with
    ``with_entries(fn)``, in a copy of the current contextvars context.
    The task is the one that calls ``to_thread`` (not the one that awaits
    the coroutine), so ``asyncio.wait_for(storectx.to_thread(fn), t)`` and
    ``asyncio.gather(storectx.to_thread(f), storectx.to_thread(g))``, which
    await it in tasks of their own, lend the caller's entries (one worker
    at a time)."""
    run = with_entries(fn)
    context = contextvars.copy_context()
    return _to_thread(functools.partial(context.run, run, *args, **kwargs))


async def _to_thread(call):
    import asyncio  # noqa: PLC0415

    return await asyncio.get_running_loop().run_in_executor(None, call)


# _load_library() accepted only a library of ABI_VERSION.
assert _abi_of(lib) == _abi_wanted(), version()
