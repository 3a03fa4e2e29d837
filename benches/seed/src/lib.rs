//! The seed's design, exported with libstorectx's C signatures as `seed_*`:
//! one `thread_local! { RefCell<Vec<Entry>> }`, the top check on every access,
//! the paused-store check by scanning the stack, borrow counts. It is what
//! libstorectx replaces, kept here only so the benchmark can compare against
//! it. Like the seed, handles carry the store id, not a unique entry name.

use std::cell::RefCell;
use std::ffi::c_void;

// Status values as in storectx.h.
const OK: i32 = 0;
const ERR_NULL_ARGUMENT: i32 = 1;
const ERR_INVALID_ARGUMENT: i32 = 2;
const ERR_NO_CONTEXT: i32 = 3;
const ERR_NOT_INSTALLED: i32 = 4;
const ERR_PAUSED: i32 = 5;
const ERR_ADDRESS_MISMATCH: i32 = 6;
const ERR_OUT_OF_ORDER: i32 = 7;
const ERR_STALE_HANDLE: i32 = 8;
const ERR_STILL_BORROWED: i32 = 9;
const ERR_NOT_BORROWED: i32 = 10;

/// Layout of `storectx_install_guard`, `storectx_borrow`, `storectx_pause_guard`.
#[repr(C)]
pub struct Handle {
    raw: u64,
}

struct Entry {
    id: u64,
    store: *mut c_void,
    borrow_count: u32,
}

thread_local! {
    static STACK: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// The lookup every by-id access starts with: the top must be `id`.
fn top_status(stack: &[Entry], id: u64) -> i32 {
    match stack.last() {
        None => ERR_NO_CONTEXT,
        Some(top) if top.id == id => OK,
        Some(_) if stack.iter().any(|e| e.id == id) => ERR_PAUSED,
        Some(_) => ERR_NOT_INSTALLED,
    }
}

/// A handle's entry is not on top: out of order if deeper, else stale.
fn handle_status(stack: &[Entry], id: u64) -> i32 {
    if stack.iter().any(|e| e.id == id) {
        ERR_OUT_OF_ORDER
    } else {
        ERR_STALE_HANDLE
    }
}

/// # Safety
/// `out` is NULL or points to writable memory for a `Handle` (as in C).
#[no_mangle]
pub unsafe extern "C" fn seed_install(id: u64, store: *mut c_void, out: *mut Handle) -> i32 {
    if store.is_null() || out.is_null() {
        return ERR_NULL_ARGUMENT;
    }
    if id == 0 {
        return ERR_INVALID_ARGUMENT;
    }
    STACK.with(|cell| {
        let mut stack = cell.borrow_mut();
        match stack.last() {
            Some(top) if top.id == id && top.store != store => return ERR_ADDRESS_MISMATCH,
            Some(top) if top.id == id => {}
            // The seed's is_suspended: scan for the id below the top.
            _ if stack.iter().rev().skip(1).any(|e| e.id == id) => return ERR_PAUSED,
            _ => {}
        }
        stack.push(Entry {
            id,
            store,
            borrow_count: 0,
        });
        // SAFETY: `out` was checked non-NULL; the caller promises it is writable.
        unsafe { (*out).raw = id };
        OK
    })
}

#[no_mangle]
pub extern "C" fn seed_uninstall(guard: Handle) -> i32 {
    STACK.with(|cell| {
        let mut stack = cell.borrow_mut();
        match stack.last() {
            Some(top) if top.id == guard.raw => {
                if top.borrow_count != 0 {
                    return ERR_STILL_BORROWED;
                }
                stack.pop();
                OK
            }
            _ => handle_status(&stack, guard.raw),
        }
    })
}

/// # Safety
/// `store` and `out` are NULL or point to writable memory (as in C).
#[no_mangle]
pub unsafe extern "C" fn seed_get_current(
    id: u64,
    store: *mut *mut c_void,
    out: *mut Handle,
) -> i32 {
    if store.is_null() || out.is_null() {
        return ERR_NULL_ARGUMENT;
    }
    if id == 0 {
        return ERR_INVALID_ARGUMENT;
    }
    STACK.with(|cell| {
        let mut stack = cell.borrow_mut();
        let status = top_status(&stack, id);
        if status != OK {
            return status;
        }
        let top = stack.last_mut().unwrap();
        top.borrow_count += 1;
        // SAFETY: both were checked non-NULL; the caller promises they are writable.
        unsafe {
            *store = top.store;
            (*out).raw = id;
        }
        OK
    })
}

#[no_mangle]
pub extern "C" fn seed_borrow_release(borrow: Handle) -> i32 {
    STACK.with(|cell| {
        let mut stack = cell.borrow_mut();
        match stack.last_mut() {
            Some(top) if top.id == borrow.raw => {
                if top.borrow_count == 0 {
                    return ERR_NOT_BORROWED;
                }
                top.borrow_count -= 1;
                OK
            }
            _ => handle_status(&stack, borrow.raw),
        }
    })
}

/// The pause guard's raw value is `id << 1 | decremented` (the seed's
/// `StorePtrPauseGuard { store_id, ref_count_decremented }`).
///
/// # Safety
/// `out` is NULL or points to writable memory for a `Handle` (as in C).
#[no_mangle]
pub unsafe extern "C" fn seed_pause(id: u64, out: *mut Handle) -> i32 {
    if out.is_null() {
        return ERR_NULL_ARGUMENT;
    }
    if id == 0 {
        return ERR_INVALID_ARGUMENT;
    }
    STACK.with(|cell| {
        let mut stack = cell.borrow_mut();
        let status = top_status(&stack, id);
        if status != OK {
            return status;
        }
        let top = stack.last_mut().unwrap();
        let decremented = top.borrow_count > 0;
        if decremented {
            top.borrow_count -= 1;
        }
        // SAFETY: `out` was checked non-NULL; the caller promises it is writable.
        unsafe { (*out).raw = id << 1 | decremented as u64 };
        OK
    })
}

#[no_mangle]
pub extern "C" fn seed_unpause(guard: Handle) -> i32 {
    let id = guard.raw >> 1;
    STACK.with(|cell| {
        let mut stack = cell.borrow_mut();
        match stack.last_mut() {
            Some(top) if top.id == id => {
                if guard.raw & 1 != 0 {
                    top.borrow_count += 1;
                }
                OK
            }
            _ => handle_status(&stack, id),
        }
    })
}

#[no_mangle]
pub extern "C" fn seed_is_active(id: u64) -> bool {
    STACK.with(|cell| cell.borrow().last().is_some_and(|top| top.id == id))
}

#[no_mangle]
pub extern "C" fn seed_is_paused(id: u64) -> bool {
    STACK.with(|cell| {
        let stack = cell.borrow();
        stack.last().is_none_or(|top| top.id != id)
            && stack.iter().rev().skip(1).any(|e| e.id == id)
    })
}

#[no_mangle]
pub extern "C" fn seed_depth() -> usize {
    STACK.with(|cell| cell.borrow().len())
}
