//! The one table of status codes: for each, its number, its C name, the text
//! `storectx_status_str` gives, and the core error variant that carries the
//! detail of one refusal. Everything else is derived from it or checked
//! against it by tests: the C enum `storectx_status` (which cbindgen must see
//! written out, in `ffi/status.rs`), the header, and the Python binding.
//! Numbers are never reused.
//!
//! A refusal's detail is a [`Detail`]: the values its message needs, kept by
//! copy with the code that formats them, so that refusing allocates nothing
//! and the text is written only when `storectx_last_error()` is read
//! (`LastError`).

use std::fmt;
use std::mem::{align_of, size_of, MaybeUninit};

/// Builds the text of a refusal the way `format!` builds a `String`, with
/// the same syntax (inline `{name}` captures and trailing arguments, up to
/// four), as a closure that writes it: the arguments are evaluated now and
/// kept by copy (each must be `Copy`, `Send`, `Sync` and `'static`:
/// numbers, `&'static str`, `Duration`, ...); the text is formatted only
/// when the closure runs. What a [`Refusal`] takes; [`detail!`] keeps one
/// as a [`Detail`].
macro_rules! text {
    ($fmt:literal $(,)?) => {
        move |f: &mut ::std::fmt::Formatter<'_>| f.write_fmt(format_args!($fmt))
    };
    ($fmt:literal, $a:expr $(,)?) => {{
        let a = $a;
        move |f: &mut ::std::fmt::Formatter<'_>| f.write_fmt(format_args!($fmt, a))
    }};
    ($fmt:literal, $a:expr, $b:expr $(,)?) => {{
        let (a, b) = ($a, $b);
        move |f: &mut ::std::fmt::Formatter<'_>| f.write_fmt(format_args!($fmt, a, b))
    }};
    ($fmt:literal, $a:expr, $b:expr, $c:expr $(,)?) => {{
        let (a, b, c) = ($a, $b, $c);
        move |f: &mut ::std::fmt::Formatter<'_>| f.write_fmt(format_args!($fmt, a, b, c))
    }};
    ($fmt:literal, $a:expr, $b:expr, $c:expr, $d:expr $(,)?) => {{
        let (a, b, c, d) = ($a, $b, $c, $d);
        move |f: &mut ::std::fmt::Formatter<'_>| f.write_fmt(format_args!($fmt, a, b, c, d))
    }};
}

/// Builds a [`Detail`] the way `format!` builds a `String` (see [`text!`]).
macro_rules! detail {
    ($($t:tt)*) => {
        $crate::error::Detail::new(text!($($t)*))
    };
}

/// An operation's name as a type (made by [`op!`]): a refusal recorded in
/// place ([`Record`]) keeps a formatter that writes the name itself, so
/// the name is not stored.
pub(crate) trait Op {
    /// The name `storectx_last_error()` shows, e.g. `"pause"`.
    const NAME: &'static str;
}

/// The [`Op`] named `$name`: `op!("pause")`.
macro_rules! op {
    ($name:literal) => {{
        struct Name;
        impl $crate::error::Op for Name {
            const NAME: &'static str = $name;
        }
        Name
    }};
}

/// What writes a text from the bytes of a captured closure.
type WriteFn<W> = unsafe fn(*const W, &mut fmt::Formatter<'_>) -> fmt::Result;

/// What runs a closure `F` stored in a `W`, as a [`WriteFn`]; a
/// compile-time error where it is used if an `F` does not fit in a `W`.
const fn writer<F, W>() -> WriteFn<W>
where
    F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result,
{
    assert!(
        size_of::<F>() <= size_of::<W>() && align_of::<F>() <= align_of::<W>(),
        "the closure does not fit: keep fewer or smaller values"
    );
    write_with::<F, W>
}

/// Stores `text` in `captured` and answers the function that runs it.
#[inline(always)]
fn capture<F, W>(captured: &mut MaybeUninit<W>, text: F) -> WriteFn<W>
where
    F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result + Copy + Send + Sync + 'static,
{
    let write = const { writer::<F, W>() };
    // SAFETY: `F` fits in `W` and needs no more alignment (checked at
    // compile time by `writer`); the bytes are written once, here.
    unsafe { captured.as_mut_ptr().cast::<F>().write(text) };
    write
}

/// The words a [`Detail`] keeps its captured values in: the largest
/// detail (four numbers, or a name and three) fits.
type Words = [u64; 6];

/// What one refusal found, in a few words and no heap: the values of its
/// message, captured by copy, and the function that writes the text from
/// them. Made by `detail!`; `Display` writes the text. Copy, so an
/// [`Error`] is moved, kept as the thread's last error and dropped without
/// running anything.
#[derive(Clone, Copy)]
pub struct Detail {
    /// Writes the text from `captured` (a monomorphised `write_with::<F, _>`).
    write: WriteFn<Words>,
    /// The closure made by `detail!`, its bytes as they are.
    captured: MaybeUninit<Words>,
}

// SAFETY: `new` takes only closures that are `Send + Sync`, and a Detail
// holds nothing but such a closure's bytes and a plain function pointer.
unsafe impl Send for Detail {}
// SAFETY: as above.
unsafe impl Sync for Detail {}

/// Calls the closure of type `F` stored at `captured`.
///
/// # Safety
/// `captured` must hold a value of type `F` (written by `capture::<F, W>`).
unsafe fn write_with<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result, W>(
    captured: *const W,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    // SAFETY: by this function's contract `captured` holds an `F`, aligned
    // (checked in `writer`); `F: Copy`, so reading it by reference is
    // reading one of its copies.
    unsafe { (*captured.cast::<F>())(f) }
}

impl Detail {
    /// Keeps `text`, a closure that writes the message from the values it
    /// captured (by copy: `F: Copy + 'static`, so it owns nothing and
    /// borrows nothing). Use `detail!`.
    #[inline(always)]
    pub fn new<F>(text: F) -> Detail
    where
        F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result + Copy + Send + Sync + 'static,
    {
        let mut captured = MaybeUninit::<Words>::uninit();
        let write = capture(&mut captured, text);
        Detail { write, captured }
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: `write` is `write_with::<F, _>` for the `F` that `new` stored
        // in `captured`, which a copy of the Detail copied byte for byte.
        unsafe { (self.write)(self.captured.as_ptr(), f) }
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", format_args!("{self}").to_string())
    }
}

impl PartialEq for Detail {
    /// Same text (for tests; formats both).
    fn eq(&self, other: &Detail) -> bool {
        self.to_string() == other.to_string()
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusInfo {
    /// The value of `storectx_status`.
    pub code: i32,
    /// Its C name, e.g. `STORECTX_ERR_PAUSED`.
    pub name: &'static str,
    /// What it means, e.g. "the store is on this thread's stack but not on top".
    pub text: &'static str,
    /// `"NAME: text"`, NUL-terminated: what `storectx_status_str` returns.
    pub described: &'static std::ffi::CStr,
}

macro_rules! status_table {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $text:literal; )*) => {
        /// Why a core operation refused: one variant per C status code. The
        /// [`Detail`] says what was expected and what was found; it is the
        /// text `storectx_last_error()` shows after the operation's name,
        /// formatted only when read. Copy, no heap: a refusal allocates
        /// nothing.
        #[derive(Debug, Clone, Copy)]
        pub enum Error {
            $( $(#[$doc])* $variant(Detail), )*
        }

        /// The status of an [`Error`] without its detail: what a refusal
        /// recorded in place answers (see `Refusal`). Its numbers are the
        /// C status codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(i32)]
        pub enum Code {
            $( $(#[$doc])* $variant = $code, )*
        }

        impl Error {
            /// The error of status `code` with `detail`.
            #[inline(always)]
            pub fn new(code: Code, detail: Detail) -> Error {
                match code { $( Code::$variant => Error::$variant(detail), )* }
            }

            /// This error's status.
            #[inline(always)]
            pub fn code(&self) -> Code {
                match self { $( Error::$variant(_) => Code::$variant, )* }
            }

            /// The row of this error's status.
            pub fn info(&self) -> &'static StatusInfo {
                match self { $( Error::$variant(_) => &STATUSES[$code], )* }
            }

            /// What was expected and what was found (formatted by `Display`).
            pub fn detail(&self) -> &Detail {
                match self { $( Error::$variant(d) => d, )* }
            }

            /// An error of each status but `STORECTX_OK` (for tests).
            #[cfg(test)]
            pub(crate) fn one_of_each() -> Vec<Error> {
                vec![ $( Error::$variant(detail!("")), )* ]
            }
        }

        /// Every status, `STORECTX_OK` first, in order of code.
        pub const STATUSES: &[StatusInfo] = &[
            StatusInfo {
                code: 0,
                name: "STORECTX_OK",
                text: "success",
                described: c"STORECTX_OK: success",
            },
            $( StatusInfo {
                code: $code,
                name: $name,
                text: $text,
                described: match std::ffi::CStr::from_bytes_with_nul(
                    concat!($name, ": ", $text, "\0").as_bytes(),
                ) {
                    Ok(s) => s,
                    Err(_) => panic!("a status text holds no NUL"),
                },
            }, )*
        ];
    };
}

status_table! {
    /// A required pointer was NULL (only the FFI layer can see this).
    NullArgument = 1, "STORECTX_ERR_NULL_ARGUMENT", "a required pointer was NULL";
    /// Store id 0, a base depth above the stack, a counter at its limit, ...
    InvalidArgument = 2, "STORECTX_ERR_INVALID_ARGUMENT",
        "store id 0, base depth above the stack, or a counter at its limit";
    /// A lookup by store id found this thread's stack empty.
    NoContext = 3, "STORECTX_ERR_NO_CONTEXT", "this thread's stack is empty";
    /// The store is not on this thread's stack.
    NotInstalled = 4, "STORECTX_ERR_NOT_INSTALLED", "the store is not on this thread's stack";
    /// The store is on this thread's stack but not on top.
    Paused = 5, "STORECTX_ERR_PAUSED", "the store is on this thread's stack but not on top";
    /// The same store id is on top with another address.
    AddressMismatch = 6, "STORECTX_ERR_ADDRESS_MISMATCH",
        "same store id installed again with another address";
    /// The handle's entry is on this thread's stack but not on top.
    OutOfOrder = 7, "STORECTX_ERR_OUT_OF_ORDER",
        "the handle's entry is on this thread but not on top";
    /// The handle names no entry (or object) of its kind here.
    StaleHandle = 8, "STORECTX_ERR_STALE_HANDLE",
        "the handle names no live entry, write guard or segment of its kind here";
    /// Uninstall refused: the entry has live borrows.
    StillBorrowed = 9, "STORECTX_ERR_STILL_BORROWED",
        "uninstall refused, the entry has live borrows";
    /// Borrow release or clone with a borrow count of zero.
    NotBorrowed = 10, "STORECTX_ERR_NOT_BORROWED",
        "borrow release or clone with a borrow count of zero";
    /// The top entry is borrowed.
    Borrowed = 11, "STORECTX_ERR_BORROWED", "the top entry is borrowed";
    /// `borrow_clone` on an async entry.
    NotSync = 12, "STORECTX_ERR_NOT_SYNC", "borrow_clone on an async entry";
    /// `try_write`: the store is locked.
    Busy = 13, "STORECTX_ERR_BUSY", "the store is locked";
    /// `write` waited past its timeout.
    TimedOut = 14, "STORECTX_ERR_TIMED_OUT", "write waited past its timeout";
    /// `write` on a store whose lock this thread's own stack holds.
    WouldDeadlock = 15, "STORECTX_ERR_WOULD_DEADLOCK",
        "this thread's own stack holds the store's lock";
    /// The store is already on this thread's stack.
    AlreadyOnStack = 16, "STORECTX_ERR_ALREADY_ON_STACK",
        "the store is already on this thread's stack";
    /// An internal bug was caught at the FFI boundary.
    Panic = 17, "STORECTX_ERR_PANIC",
        "internal error caught at the boundary, state unchanged";
    /// A table, counter or memory is used up: live write guards or
    /// segments, entry numbers, thread-specific data keys, memory for a
    /// stack to grow.
    Exhausted = 18, "STORECTX_ERR_EXHAUSTED",
        "too many live write guards or segments, a counter used up, or no memory left";
}

/// The text of an unknown status value.
pub const UNKNOWN_STATUS: &std::ffi::CStr =
    c"STORECTX_UNKNOWN_STATUS: not a status code of this library";

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.detail().fmt(f)
    }
}

impl std::error::Error for Error {}

/// A reserved store id (0 or `u64::MAX`) given where a store is meant.
#[inline(always)]
pub(crate) fn reserved_id<R: Refusal>(id: u64, to: R) -> R::Out {
    to.refuse(
        Code::InvalidArgument,
        text!(
            "store id {id:#x} is reserved (0 and UINT64_MAX name no store); use \
             storectx_store_id_new()"
        ),
    )
}

impl Error {
    /// [`reserved_id`] as an [`Error`].
    #[cold]
    #[inline(never)]
    pub(crate) fn reserved_id(id: u64) -> Error {
        reserved_id(id, AsError)
    }
}

/// Where the explanation of a refusal goes. The code that explains a
/// refusal is written once, generic over this, and inlined where it is
/// used: [`AsError`] makes an [`Error`] (the core's `Result`s), [`Record`]
/// writes it in place as the thread's last error (the exports' refusal
/// paths: no error value is built and copied through frames, which cost
/// each refused call 40 to 100 instructions; BENCHMARKS.md, "Refusals").
pub(crate) trait Refusal {
    /// What the refusing function answers.
    type Out;
    /// Refuses with status `code`; `text` (made by [`text!`]) writes the
    /// message.
    fn refuse<F>(self, code: Code, text: F) -> Self::Out
    where
        F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result + Copy + Send + Sync + 'static;
}

/// Makes the refusal an [`Error`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct AsError;

impl Refusal for AsError {
    type Out = Error;
    #[inline(always)]
    fn refuse<F>(self, code: Code, text: F) -> Error
    where
        F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result + Copy + Send + Sync + 'static,
    {
        Error::new(code, Detail::new(text))
    }
}

/// Writes the refusal of operation `O` as the thread's last error, in
/// place ([`LastError::keep`]), and answers its status. One word: passed
/// in a register to an out-of-line explanation.
pub(crate) struct Record<'a, O: Op> {
    last: &'a mut LastError,
    op: std::marker::PhantomData<O>,
}

impl<'a, O: Op> Record<'a, O> {
    /// Records refusals of `O` into `last`.
    #[inline(always)]
    pub(crate) fn new(last: &'a mut LastError, _op: O) -> Self {
        Record {
            last,
            op: std::marker::PhantomData,
        }
    }
}

impl<O: Op> Refusal for Record<'_, O> {
    type Out = Code;
    #[inline(always)]
    fn refuse<F>(self, code: Code, text: F) -> Code
    where
        F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result + Copy + Send + Sync + 'static,
    {
        self.last.keep::<O, F>(text);
        code
    }
}

/// Shorthand for core results.
pub type Result<T> = std::result::Result<T, Error>;

/// Bytes of a thread's last-error text, its NUL included; a longer text is
/// cut (at a character boundary). The longest message of this library is
/// under 300 bytes with every number at its widest (tested below).
pub(crate) const LAST_ERROR_BYTES: usize = 512;

/// The bytes a thread's last error keeps its pending text's values in:
/// an operation's name and a [`Detail`] (the [`Error`] path), or the values
/// of a refusal recorded in place.
type Kept = [u64; 9];

/// A thread's last error. A failed call keeps what its text needs as it is
/// (a few words written in place, nothing formatted, nothing allocated):
/// the values of its message and the function that writes
/// `"<operation>: <detail>"` from them. Reading writes the text into a
/// buffer of the thread's own, which stays put until the thread's
/// teardown, so the pointer a read returns stays valid at least until the
/// thread's next failed call.
pub(crate) struct LastError {
    /// Writes the last failure's text from `kept`; `None` once the text is
    /// in `text` (or when there is none).
    pending: Option<WriteFn<Kept>>,
    /// What `pending` writes from.
    kept: MaybeUninit<Kept>,
    /// NUL-terminated text as of the last read ("" when none).
    text: [u8; LAST_ERROR_BYTES],
}

impl LastError {
    /// No error yet: the text is "".
    pub(crate) const fn new() -> Self {
        LastError {
            pending: None,
            kept: MaybeUninit::uninit(),
            text: [0; LAST_ERROR_BYTES],
        }
    }

    /// Keeps `e` as the last error of `op`, unformatted.
    #[inline]
    pub(crate) fn set(&mut self, op: &'static str, e: Error) {
        let detail = *e.detail();
        self.pending = Some(capture(
            &mut self.kept,
            move |f: &mut fmt::Formatter<'_>| write!(f, "{op}: {detail}"),
        ));
    }

    /// Keeps `text` (made by [`text!`]) as the last error of `O`,
    /// unformatted: inlined into a refusal path, its values are stored here
    /// directly, with one function pointer that also writes `O`'s name.
    #[inline(always)]
    pub(crate) fn keep<O: Op, F>(&mut self, text: F)
    where
        F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result + Copy + Send + Sync + 'static,
    {
        self.pending = Some(capture(
            &mut self.kept,
            move |f: &mut fmt::Formatter<'_>| {
                f.write_str(O::NAME)?;
                f.write_str(": ")?;
                text(f)
            },
        ));
    }

    /// Writes `text` as the last error now: for the panic boundary, whose
    /// message (the panic's payload) cannot be kept by copy.
    pub(crate) fn set_text(&mut self, text: fmt::Arguments<'_>) {
        self.pending = None;
        write_cut(&mut self.text, text);
    }

    /// The text, NUL-terminated: `"<operation>: <detail>"`, formatted here
    /// if the last failure has not been read yet. Allocates nothing.
    pub(crate) fn text(&mut self) -> *const u8 {
        if let Some(write) = self.pending.take() {
            struct Kept<'a>(WriteFn<self::Kept>, &'a MaybeUninit<self::Kept>);
            impl fmt::Display for Kept<'_> {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    // SAFETY: `pending` was set together with `kept`, by
                    // `capture`, which answered the function that runs the
                    // closure it stored there.
                    unsafe { (self.0)(self.1.as_ptr(), f) }
                }
            }
            write_cut(&mut self.text, format_args!("{}", Kept(write, &self.kept)));
        }
        self.text.as_ptr()
    }
}

/// Writes `text` into `buf` as a C string: NUL bytes of the text become
/// `?`, and what does not fit before the final NUL is cut at a character
/// boundary.
fn write_cut(buf: &mut [u8], text: fmt::Arguments<'_>) {
    struct Cut<'a> {
        buf: &'a mut [u8],
        len: usize,
    }
    impl fmt::Write for Cut<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = self.buf.len() - 1 - self.len;
            let mut take = s.len().min(room);
            while !s.is_char_boundary(take) {
                take -= 1;
            }
            for (to, &b) in self.buf[self.len..self.len + take]
                .iter_mut()
                .zip(s.as_bytes())
            {
                *to = if b == 0 { b'?' } else { b };
            }
            self.len += take;
            if take < s.len() {
                Err(fmt::Error) // full: stop formatting
            } else {
                Ok(())
            }
        }
    }
    let mut cut = Cut { buf, len: 0 };
    // An error here only means the text was cut.
    let _ = fmt::Write::write_fmt(&mut cut, text);
    let end = cut.len;
    cut.buf[end] = 0;
}

// A refusal moves its error a few times on its way to the thread's last
// error: keep it to one cache line.
const _: () = assert!(size_of::<Error>() <= 64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_writes_what_format_would() {
        let (id, what) = (7u64, "pause guard");
        let wait = std::time::Duration::from_millis(20);
        let d = detail!("{what} for store {id} at {:#x}, {:?}", 0x10usize, wait);
        let copy = d;
        assert_eq!(
            copy.to_string(),
            format!("{what} for store {id} at {:#x}, {:?}", 0x10usize, wait)
        );
        assert_eq!(d.to_string(), "pause guard for store 7 at 0x10, 20ms");
        assert_eq!(detail!("plain").to_string(), "plain");
        let e = Error::Paused(d);
        assert_eq!(format!("{e}"), d.to_string());
        assert_eq!(
            format!("{e:?}"),
            "Paused(\"pause guard for store 7 at 0x10, 20ms\")"
        );
    }

    fn text_of(last: &mut LastError) -> String {
        // SAFETY: `text` answers a NUL-terminated buffer of `last`, alive here.
        unsafe { std::ffi::CStr::from_ptr(last.text().cast()) }
            .to_str()
            .expect("the text is cut at character boundaries")
            .to_owned()
    }

    #[test]
    fn the_last_error_is_formatted_when_read_and_cut_to_its_buffer() {
        let mut last = LastError::new();
        assert_eq!(text_of(&mut last), "");
        let depth = 3usize;
        last.set("uninstall", Error::StaleHandle(detail!("at depth {depth}")));
        let at = last.text();
        assert_eq!(text_of(&mut last), "uninstall: at depth 3");
        last.set("pause", Error::Paused(detail!("nul \0 inside")));
        assert_eq!(text_of(&mut last), "pause: nul ? inside");
        assert_eq!(last.text(), at, "the text stays in one place");
        let long = "é".repeat(LAST_ERROR_BYTES);
        last.set_text(format_args!("panic: {long}"));
        let text = text_of(&mut last);
        assert!(text.len() < LAST_ERROR_BYTES && text.len() >= LAST_ERROR_BYTES - 2);
        assert!(text.starts_with("panic: éé"));
    }

    /// The longest messages, every number at its widest, fit uncut.
    #[test]
    fn the_longest_messages_fit() {
        let (n, what) = (u64::MAX, "install guard");
        let long = [
            detail!(
                "{what} for store {n} is at depth {n}, top is store {n} at depth {}",
                usize::MAX
            ),
            detail!(
                "install guard names no entry of its kind on this thread's stack (depth {n}): \
                 already uninstalled, zeroed or forged, from another thread, or its entry \
                 is suspended"
            ),
        ];
        for d in long {
            let mut last = LastError::new();
            last.set("get_current_unborrowed", Error::OutOfOrder(d));
            let text = text_of(&mut last);
            assert!(text.ends_with(&d.to_string()), "{text}");
            assert!(text.len() < 300, "{}", text.len());
        }
    }

    #[test]
    fn codes_are_the_row_numbers_and_each_error_has_its_row() {
        for (row, info) in STATUSES.iter().enumerate() {
            assert_eq!(info.code as usize, row, "{}", info.name);
            assert!(info.name.starts_with("STORECTX_"));
            assert_eq!(
                info.described.to_str().unwrap(),
                format!("{}: {}", info.name, info.text)
            );
        }
        let errors = Error::one_of_each();
        assert_eq!(errors.len() + 1, STATUSES.len());
        for (code, e) in (1..).zip(&errors) {
            assert_eq!(e.info().code, code);
        }
    }
}
