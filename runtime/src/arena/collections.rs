//! [`ArenaVec`] and [`ArenaString`]: growable collections in an arena.
//!
//! Thin wrappers around `bumpalo::collections::{Vec, String}` that keep a
//! reference to their [`Arena`] so that growing past the arena's byte limit
//! gives the arena's typed [`ArenaError`] (from the `try_` methods) or a panic
//! with its actionable message (from the plain ones), and counts as a limit
//! hit in [`stats()`](super::stats()). bumpalo's own collections would panic with
//! a bare "out of memory". Growth is amortised doubling inside the arena; the
//! old buffer is not reused until the scope ends (growing the newest
//! allocation in place is free).
//!
//! Dropping an `ArenaVec` drops its elements (the memory stays in the arena
//! until reset); [`ArenaVec::into_slice`] gives up that duty.

use super::alloc::Arena;
use super::error::ArenaError;
use bumpalo::collections::{CollectionAllocErr, String as BumpString, Vec as BumpVec};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// Maps bumpalo's collection error for a request of `bytes` bytes.
fn collection_error(arena: &Arena, err: CollectionAllocErr, bytes: Option<usize>) -> ArenaError {
    match (err, bytes) {
        (CollectionAllocErr::AllocErr, Some(bytes)) => arena.refused(bytes),
        _ => ArenaError::capacity_overflow(),
    }
}

/// A growable vector whose buffer lives in an [`Arena`].
///
/// Derefs to `[T]`. Create one with [`Arena::vec`] or
/// [`Arena::vec_with_capacity`].
///
/// # Examples
///
/// ```
/// pinstack::arena::with_arena(|a| {
///     let mut ids = a.vec();
///     ids.extend([3u32, 1, 2]);
///     ids.sort_unstable();
///     assert_eq!(ids, [1, 2, 3]);
/// });
/// ```
pub struct ArenaVec<'a, T> {
    inner: BumpVec<'a, T>,
    arena: &'a Arena,
}

impl<'a, T> ArenaVec<'a, T> {
    pub(crate) fn new_in(arena: &'a Arena) -> Self {
        ArenaVec {
            inner: BumpVec::new_in(arena.as_bump()),
            arena,
        }
    }

    /// Makes room for at least `additional` more elements.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the arena refuses the memory.
    #[track_caller]
    pub fn reserve(&mut self, additional: usize) {
        if let Err(err) = self.try_reserve(additional) {
            err.panic();
        }
    }

    /// Makes room for at least `additional` more elements, or returns why not.
    #[inline]
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), ArenaError> {
        if self.inner.capacity() - self.inner.len() >= additional {
            return Ok(());
        }
        self.grow(additional)
    }

    /// The slow half of `try_reserve`: ask the arena for a bigger buffer.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, additional: usize) -> Result<(), ArenaError> {
        self.inner.try_reserve(additional).map_err(|err| {
            let bytes = self
                .inner
                .len()
                .checked_add(additional)
                .and_then(|n| n.checked_mul(std::mem::size_of::<T>()));
            collection_error(self.arena, err, bytes)
        })
    }

    /// Appends `value`.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the arena refuses the memory.
    #[inline]
    #[track_caller]
    pub fn push(&mut self, value: T) {
        if self.inner.len() == self.inner.capacity() {
            self.reserve(1);
        }
        self.inner.push(value);
    }

    /// Appends `value`, or returns why the memory was refused (the value is
    /// then dropped).
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), ArenaError> {
        if self.inner.len() == self.inner.capacity() {
            self.try_reserve(1)?;
        }
        self.inner.push(value);
        Ok(())
    }

    /// Appends clones of every element of `other`.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the arena refuses the memory.
    #[track_caller]
    pub fn extend_from_slice(&mut self, other: &[T])
    where
        T: Clone,
    {
        self.reserve(other.len());
        self.inner.extend_from_slice(other);
    }

    /// Appends clones of every element of `other`, or returns why the memory
    /// was refused (then nothing is appended).
    pub fn try_extend_from_slice(&mut self, other: &[T]) -> Result<(), ArenaError>
    where
        T: Clone,
    {
        self.try_reserve(other.len())?;
        self.inner.extend_from_slice(other);
        Ok(())
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        self.inner.pop()
    }

    /// Keeps the first `len` elements and drops the rest.
    pub fn truncate(&mut self, len: usize) {
        self.inner.truncate(len);
    }

    /// Drops every element; keeps the buffer.
    pub fn clear(&mut self) {
        self.inner.clear();
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Elements the buffer holds before it must grow.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// The elements as a slice.
    pub fn as_slice(&self) -> &[T] {
        &self.inner
    }

    /// The elements as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.inner
    }

    /// Turns the vector into a slice that lives as long as the arena scope.
    /// The elements' destructors will then never run.
    pub fn into_slice(self) -> &'a mut [T] {
        self.inner.into_bump_slice_mut()
    }

    /// The bumpalo vector underneath (its growth panics with bumpalo's
    /// message at the limit).
    pub fn into_bumpalo(self) -> BumpVec<'a, T> {
        self.inner
    }
}

impl<T> Deref for ArenaVec<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.inner
    }
}

impl<T> DerefMut for ArenaVec<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.inner
    }
}

impl<T> AsRef<[T]> for ArenaVec<'_, T> {
    fn as_ref(&self) -> &[T] {
        &self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for ArenaVec<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

/// Panics with an [`ArenaError`] message when the arena refuses the memory.
impl<T> Extend<T> for ArenaVec<'_, T> {
    #[track_caller]
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.reserve(iter.size_hint().0);
        for value in iter {
            self.push(value);
        }
    }
}

impl<'a, 'v, T> IntoIterator for &'v ArenaVec<'a, T> {
    type Item = &'v T;
    type IntoIter = std::slice::Iter<'v, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.inner.iter()
    }
}

impl<'a, 'v, T> IntoIterator for &'v mut ArenaVec<'a, T> {
    type Item = &'v mut T;
    type IntoIter = std::slice::IterMut<'v, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.inner.iter_mut()
    }
}

impl<'a, T> IntoIterator for ArenaVec<'a, T> {
    type Item = T;
    type IntoIter = bumpalo::collections::vec::IntoIter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.inner.into_iter()
    }
}

impl<T: PartialEq, U: AsRef<[T]> + ?Sized> PartialEq<U> for ArenaVec<'_, T> {
    fn eq(&self, other: &U) -> bool {
        *self.inner == *other.as_ref()
    }
}

/// The capacity an [`ArenaString`] starts with when it first grows.
pub const MIN_STRING_CAPACITY: usize = 64;

/// Copies `n` bytes from `src` to `dst`; up to 16 bytes with two
/// overlapping loads and stores instead of a `memcpy` call.
///
/// # Safety
///
/// `src` is valid for reading and `dst` for writing `n` bytes, and the two
/// ranges do not overlap.
#[inline(always)]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: each access is inside `[0, n)` of its range (`n - 8 >= 0`
    // when `n >= 8`, and so on), which the caller guarantees valid and
    // non-overlapping; the reads and writes are unaligned ones because the
    // bytes have no alignment.
    unsafe {
        if n >= 8 {
            if n > 16 {
                std::ptr::copy_nonoverlapping(src, dst, n);
                return;
            }
            let head = src.cast::<u64>().read_unaligned();
            let tail = src.add(n - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(head);
            dst.add(n - 8).cast::<u64>().write_unaligned(tail);
        } else if n >= 4 {
            let head = src.cast::<u32>().read_unaligned();
            let tail = src.add(n - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(head);
            dst.add(n - 4).cast::<u32>().write_unaligned(tail);
        } else if n > 0 {
            // 1 to 3 bytes: first, middle and last (some the same byte).
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
    }
}

/// A growable UTF-8 string whose buffer lives in an [`Arena`].
///
/// Derefs to `str` and implements [`fmt::Write`], so `write!` works. Create
/// one with [`Arena::string`], [`Arena::string_with_capacity`],
/// [`Arena::format`] or [`arena_format!`](crate::arena_format).
///
/// # Examples
///
/// ```
/// use std::fmt::Write;
///
/// pinstack::arena::with_arena(|a| {
///     let mut line = a.string_with_capacity(64);
///     for i in 0..3 {
///         write!(line, "{i} ").unwrap();
///     }
///     line.push_str("go");
///     assert_eq!(line, "0 1 2 go");
/// });
/// ```
pub struct ArenaString<'a> {
    inner: BumpString<'a>,
    arena: &'a Arena,
}

impl<'a> ArenaString<'a> {
    pub(crate) fn new_in(arena: &'a Arena) -> Self {
        ArenaString {
            inner: BumpString::new_in(arena.as_bump()),
            arena,
        }
    }

    /// Makes room for at least `additional` more bytes.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the arena refuses the memory.
    #[track_caller]
    pub fn reserve(&mut self, additional: usize) {
        if let Err(err) = self.try_reserve(additional) {
            err.panic();
        }
    }

    /// Makes room for at least `additional` more bytes, or returns why not.
    #[inline]
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), ArenaError> {
        if self.inner.capacity() - self.inner.len() >= additional {
            return Ok(());
        }
        self.grow(additional)
    }

    /// The slow half of `try_reserve`: ask the arena for a bigger buffer.
    ///
    /// Growth at least doubles the capacity (amortised O(1) appends) and
    /// starts at [`MIN_STRING_CAPACITY`] bytes: in an arena a 64-byte buffer
    /// costs the same pointer bump as an 8-byte one (std's `String` starts at
    /// 8 because `malloc` size classes make the first small steps cheap), and
    /// every step skipped is a copy saved. bumpalo's own `reserve` grows to
    /// exactly what is needed when that is more than double, so a string
    /// built from pieces would regrow more often. When the buffer is the
    /// arena's newest allocation, bumpalo reuses its bytes: the grown buffer
    /// overlaps the old one and only the contents move. Past the limit, it
    /// retries with exactly what is needed before giving up.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, additional: usize) -> Result<(), ArenaError> {
        let len = self.inner.len();
        let Some(needed) = len.checked_add(additional) else {
            return Err(ArenaError::capacity_overflow());
        };
        let target = needed
            .max(self.inner.capacity().saturating_mul(2))
            .max(MIN_STRING_CAPACITY);
        // SAFETY: the bytes are only reserved, never written or removed, so
        // the contents stay valid UTF-8 (`as_mut_vec`'s contract).
        let bytes = unsafe { self.inner.as_mut_vec() };
        bytes
            .try_reserve_exact(target - len)
            .or_else(|_| bytes.try_reserve_exact(additional))
            .map_err(|err| collection_error(self.arena, err, Some(needed)))
    }

    /// Appends `s`.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the arena refuses the memory.
    #[inline]
    #[track_caller]
    pub fn push_str(&mut self, s: &str) {
        if let Err(err) = self.try_push_str(s) {
            err.panic();
        }
    }

    /// Appends `s`, or returns why the memory was refused (then nothing is
    /// appended).
    ///
    /// The fast path (room left in the buffer) is one comparison and a copy,
    /// inlined into the caller; short pieces (up to 16 bytes, the usual
    /// `write!` fragment) are copied without a call to `memcpy`.
    #[inline(always)]
    pub fn try_push_str(&mut self, s: &str) -> Result<(), ArenaError> {
        let len = self.inner.len();
        if self.inner.capacity() - len < s.len() {
            return self.push_str_slow(s);
        }
        // SAFETY: `s` is valid UTF-8 and appended whole, so the contents
        // stay valid UTF-8 (`as_mut_vec`'s contract).
        let bytes = unsafe { self.inner.as_mut_vec() };
        // SAFETY: `capacity - len >= s.len()` (checked above), so the
        // destination `[len, len + s.len())` is inside the buffer; `s` cannot
        // overlap it (it is spare capacity, which no `&str` can point into
        // while `self` is borrowed mutably); the bytes are initialised by the
        // copy before `set_len` covers them.
        unsafe {
            copy_bytes(s.as_ptr(), bytes.as_mut_ptr().add(len), s.len());
            bytes.set_len(len + s.len());
        }
        Ok(())
    }

    /// The slow half of `try_push_str`: grow, then append.
    #[cold]
    #[inline(never)]
    fn push_str_slow(&mut self, s: &str) -> Result<(), ArenaError> {
        self.grow(s.len())?;
        let len = self.inner.len();
        // SAFETY: as in `try_push_str`: `grow` succeeded, so there is room
        // for `s` after `len`; `s` is valid UTF-8, copied whole into spare
        // capacity it cannot overlap, before `set_len` covers it.
        unsafe {
            let bytes = self.inner.as_mut_vec();
            copy_bytes(s.as_ptr(), bytes.as_mut_ptr().add(len), s.len());
            bytes.set_len(len + s.len());
        }
        Ok(())
    }

    /// Appends `c`.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the arena refuses the memory.
    #[track_caller]
    pub fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }

    /// Appends `c`, or returns why the memory was refused.
    pub fn try_push(&mut self, c: char) -> Result<(), ArenaError> {
        self.try_push_str(c.encode_utf8(&mut [0; 4]))
    }

    /// Appends formatted text: `s.try_write_fmt(format_args!(..))`. On error
    /// the string keeps what was written before the memory ran out.
    ///
    /// # Panics
    ///
    /// Like `std::format!`, panics if a `Display` implementation returns an
    /// error although the string accepted every byte.
    pub fn try_write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), ArenaError> {
        struct Adapter<'s, 'a> {
            out: &'s mut ArenaString<'a>,
            err: Option<ArenaError>,
        }
        impl fmt::Write for Adapter<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.out.try_push_str(s).map_err(|err| {
                    self.err = Some(err);
                    fmt::Error
                })
            }
        }
        let mut adapter = Adapter {
            out: self,
            err: None,
        };
        match (fmt::write(&mut adapter, args), adapter.err) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(err)) => Err(err),
            (Err(_), None) => {
                panic!("a formatting trait implementation returned an error when the underlying stream did not")
            }
        }
    }

    /// Removes and returns the last character.
    pub fn pop(&mut self) -> Option<char> {
        self.inner.pop()
    }

    /// Keeps the first `len` bytes.
    ///
    /// # Panics
    ///
    /// Panics if `len` is not on a `char` boundary, like `String::truncate`.
    pub fn truncate(&mut self, len: usize) {
        self.inner.truncate(len);
    }

    /// Empties the string; keeps the buffer.
    pub fn clear(&mut self) {
        self.inner.clear();
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Bytes the buffer holds before it must grow.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// The contents.
    pub fn as_str(&self) -> &str {
        &self.inner
    }

    /// The contents, mutably.
    pub fn as_mut_str(&mut self) -> &mut str {
        self.inner.as_mut_str()
    }

    /// Turns the string into a `&str` that lives as long as the arena scope.
    pub fn into_str(self) -> &'a str {
        self.inner.into_bump_str()
    }

    /// The bumpalo string underneath (its growth panics with bumpalo's
    /// message at the limit).
    pub fn into_bumpalo(self) -> BumpString<'a> {
        self.inner
    }
}

/// `write!` support. Like `push_str`, a write the arena refuses panics with
/// an [`ArenaError`] message; use [`ArenaString::try_write_fmt`] to get the
/// error instead.
impl fmt::Write for ArenaString<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Err(err) = self.try_push_str(s) {
            err.panic();
        }
        Ok(())
    }

    #[inline]
    fn write_char(&mut self, c: char) -> fmt::Result {
        self.write_str(c.encode_utf8(&mut [0; 4]))
    }
}

impl Deref for ArenaString<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.inner
    }
}

impl DerefMut for ArenaString<'_> {
    fn deref_mut(&mut self) -> &mut str {
        self.inner.as_mut_str()
    }
}

impl AsRef<str> for ArenaString<'_> {
    fn as_ref(&self) -> &str {
        &self.inner
    }
}

impl AsRef<[u8]> for ArenaString<'_> {
    fn as_ref(&self) -> &[u8] {
        self.inner.as_bytes()
    }
}

impl fmt::Display for ArenaString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for ArenaString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for ArenaString<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ArenaString<'_> {}

impl PartialEq<str> for ArenaString<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ArenaString<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for ArenaString<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}
