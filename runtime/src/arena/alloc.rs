//! [`Arena`]: the allocation API one request scope sees.
//!
//! An `Arena` is a bumpalo `Bump` with a byte limit, a list of destructors to
//! run at reset ([`alloc_with_drop`](Arena::alloc_with_drop)) and a count of
//! limit hits. User code only ever holds `&Arena` (from
//! [`with_arena`](super::with_arena) or a [`RequestArena`](super::RequestArena)),
//! so every reference it allocates borrows the scope and cannot outlive it;
//! the pool resets the arena through `&mut` once the scope has ended.
//!
//! Every allocating method has a `try_` twin returning [`ArenaError`]; the
//! plain method panics with that error's message. Nothing here touches an
//! atomic or a thread-local: the per-allocation path is bumpalo's pointer bump.

use super::collections::{ArenaString, ArenaVec};
use super::drop_list::DropList;
use super::error::ArenaError;
use bumpalo::Bump;
use std::alloc::Layout;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

/// A per-request bump arena, handed out by [`with_arena`](super::with_arena)
/// or [`RequestArena`](super::RequestArena).
///
/// Allocation is a pointer bump; memory comes back all at once when the scope
/// ends and the arena is reset for the next request on the same worker.
/// Values allocated here borrow the arena, so they cannot outlive the scope.
///
/// # Destructors
///
/// Like bumpalo, [`alloc`](Arena::alloc) and the slice methods never run the
/// values' destructors: prefer types without `Drop` (numbers, `&str`,
/// [`ArenaVec`], [`ArenaString`], plain structs of those). For a value that
/// owns something outside the arena (a heap `String`, an `Rc`, a file), use
/// [`alloc_with_drop`](Arena::alloc_with_drop), whose destructor runs when the
/// scope ends.
///
/// `Arena` is neither `Send` nor `Sync`: it belongs to its worker's pool.
///
/// # Examples
///
/// ```
/// use pinstack::arena::{self, Arena};
///
/// fn handle(a: &Arena, name: &str) -> usize {
///     let nums = a.alloc_slice_copy(&[1u32, 2, 3]);
///     nums[0] = 10;
///     let greeting = pinstack::arena_format!(a, "hello {name}, {}", nums[0]);
///     greeting.len()
/// }
///
/// assert_eq!(arena::with_arena(|a| handle(a, "ada")), 13);
/// ```
pub struct Arena {
    bump: Bump,
    drops: DropList,
    /// Limit hits since the scope began; the pool publishes and clears it.
    limit_hits: Cell<u64>,
    /// Keeps `Arena` (and so `RequestArena`) `!Send` and `!Sync` on purpose:
    /// it belongs to the pool of the thread that checked it out.
    _not_send: PhantomData<*mut ()>,
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("chunk_bytes", &self.chunk_bytes())
            .field("limit", &self.limit())
            .field("pending_destructors", &!self.drops.is_empty())
            .finish()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        self.run_drops();
    }
}

impl Arena {
    /// A fresh arena with no chunk yet (the first allocation makes one).
    pub(crate) fn new(limit: usize) -> Self {
        let arena = Arena {
            bump: Bump::new(),
            drops: DropList::new(),
            limit_hits: Cell::new(0),
            _not_send: PhantomData,
        };
        arena.bump.set_allocation_limit(Some(limit));
        arena
    }

    /// The byte limit of this scope: the most chunk memory the arena may hold.
    pub fn limit(&self) -> usize {
        self.bump.allocation_limit().unwrap_or(usize::MAX)
    }

    /// Bytes of chunk memory the arena holds now (used or not, without
    /// bumpalo's per-chunk footer). This is what the limit is compared with.
    pub fn chunk_bytes(&self) -> usize {
        self.bump.allocated_bytes()
    }

    /// Moves `value` into the arena. Its destructor never runs (see the type
    /// docs; use [`alloc_with_drop`](Self::alloc_with_drop) when it must).
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the arena's byte limit (or
    /// the global allocator) refuses the memory; [`try_alloc`](Self::try_alloc)
    /// returns the error instead.
    #[inline]
    #[track_caller]
    pub fn alloc<T>(&self, value: T) -> &mut T {
        match self.try_alloc(value) {
            Ok(slot) => slot,
            Err(err) => err.panic(),
        }
    }

    /// Moves `value` into the arena, or returns why it could not (the value
    /// is then dropped).
    #[inline]
    pub fn try_alloc<T>(&self, value: T) -> Result<&mut T, ArenaError> {
        self.bump
            .try_alloc(value)
            .map_err(|_| self.refused(Layout::new::<T>().size()))
    }

    /// Moves `value` into the arena and runs its destructor when the scope
    /// ends: destructors run newest first, before the memory is reused. If
    /// one panics, the others still run.
    ///
    /// `T: 'static` keeps this sound: a destructor cannot observe another
    /// arena value, which may already be dropped.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the limit refuses the memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// let shared = Rc::new(());
    /// pinstack::arena::with_arena(|a| {
    ///     a.alloc_with_drop(Rc::clone(&shared));
    ///     assert_eq!(Rc::strong_count(&shared), 2);
    /// });
    /// assert_eq!(Rc::strong_count(&shared), 1, "dropped at scope end");
    /// ```
    #[track_caller]
    pub fn alloc_with_drop<T: 'static>(&self, value: T) -> &mut T {
        match self.try_alloc_with_drop(value) {
            Ok(slot) => slot,
            Err(err) => err.panic(),
        }
    }

    /// [`alloc_with_drop`](Self::alloc_with_drop), returning the error
    /// instead of panicking (the value is then dropped at once).
    pub fn try_alloc_with_drop<T: 'static>(&self, value: T) -> Result<&mut T, ArenaError> {
        self.drops
            .try_alloc(&self.bump, value)
            .map_err(|_| self.refused(Layout::new::<(usize, usize, T)>().size()))
    }

    /// Copies `src` into the arena.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the limit refuses the memory.
    #[inline]
    #[track_caller]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        match self.try_alloc_slice_copy(src) {
            Ok(slice) => slice,
            Err(err) => err.panic(),
        }
    }

    /// Copies `src` into the arena, or returns why it could not.
    #[inline]
    pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], ArenaError> {
        self.bump
            .try_alloc_slice_copy(src)
            .map_err(|_| self.refused(std::mem::size_of_val(src)))
    }

    /// A slice of `len` copies of `value` (a zeroed buffer: `(n, 0u8)`).
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the limit refuses the memory.
    #[inline]
    #[track_caller]
    pub fn alloc_slice_fill_copy<T: Copy>(&self, len: usize, value: T) -> &mut [T] {
        match self.try_alloc_slice_fill_copy(len, value) {
            Ok(slice) => slice,
            Err(err) => err.panic(),
        }
    }

    /// A slice of `len` copies of `value`, or why it could not be allocated.
    #[inline]
    pub fn try_alloc_slice_fill_copy<T: Copy>(
        &self,
        len: usize,
        value: T,
    ) -> Result<&mut [T], ArenaError> {
        let Some(bytes) = len.checked_mul(std::mem::size_of::<T>()) else {
            return Err(ArenaError::capacity_overflow());
        };
        self.bump
            .try_alloc_slice_fill_copy(len, value)
            .map_err(|_| self.refused(bytes))
    }

    /// A slice whose element `i` is `f(i)`. Like [`alloc`](Self::alloc),
    /// element destructors never run.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the limit refuses the memory.
    #[inline]
    #[track_caller]
    pub fn alloc_slice_fill_with<T>(&self, len: usize, f: impl FnMut(usize) -> T) -> &mut [T] {
        match self.try_alloc_slice_fill_with(len, f) {
            Ok(slice) => slice,
            Err(err) => err.panic(),
        }
    }

    /// A slice whose element `i` is `f(i)`, or why it could not be allocated
    /// (then `f` is never called).
    #[inline]
    pub fn try_alloc_slice_fill_with<T>(
        &self,
        len: usize,
        f: impl FnMut(usize) -> T,
    ) -> Result<&mut [T], ArenaError> {
        let Some(bytes) = len.checked_mul(std::mem::size_of::<T>()) else {
            return Err(ArenaError::capacity_overflow());
        };
        self.bump
            .try_alloc_slice_fill_with(len, f)
            .map_err(|_| self.refused(bytes))
    }

    /// Copies `src` into the arena.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the limit refuses the memory.
    #[inline]
    #[track_caller]
    pub fn alloc_str(&self, src: &str) -> &mut str {
        match self.try_alloc_str(src) {
            Ok(s) => s,
            Err(err) => err.panic(),
        }
    }

    /// Copies `src` into the arena, or returns why it could not.
    #[inline]
    pub fn try_alloc_str(&self, src: &str) -> Result<&mut str, ArenaError> {
        self.bump
            .try_alloc_str(src)
            .map_err(|_| self.refused(src.len()))
    }

    /// An empty growable vector in the arena (allocates on first push).
    pub fn vec<T>(&self) -> ArenaVec<'_, T> {
        ArenaVec::new_in(self)
    }

    /// A growable vector with room for `capacity` elements.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the limit refuses the memory.
    #[track_caller]
    pub fn vec_with_capacity<T>(&self, capacity: usize) -> ArenaVec<'_, T> {
        match self.try_vec_with_capacity(capacity) {
            Ok(v) => v,
            Err(err) => err.panic(),
        }
    }

    /// A growable vector with room for `capacity` elements, or why the room
    /// could not be allocated.
    pub fn try_vec_with_capacity<T>(&self, capacity: usize) -> Result<ArenaVec<'_, T>, ArenaError> {
        let mut v = ArenaVec::new_in(self);
        v.try_reserve(capacity)?;
        Ok(v)
    }

    /// An empty growable string in the arena.
    pub fn string(&self) -> ArenaString<'_> {
        ArenaString::new_in(self)
    }

    /// A growable string with room for `capacity` bytes.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the limit refuses the memory.
    #[track_caller]
    pub fn string_with_capacity(&self, capacity: usize) -> ArenaString<'_> {
        match self.try_string_with_capacity(capacity) {
            Ok(s) => s,
            Err(err) => err.panic(),
        }
    }

    /// A growable string with room for `capacity` bytes, or why the room
    /// could not be allocated.
    pub fn try_string_with_capacity(&self, capacity: usize) -> Result<ArenaString<'_>, ArenaError> {
        let mut s = ArenaString::new_in(self);
        s.try_reserve(capacity)?;
        Ok(s)
    }

    /// Formats into a new arena string: `arena.format(format_args!(..))`, or
    /// the [`arena_format!`](crate::arena_format) macro.
    ///
    /// # Panics
    ///
    /// Panics with an [`ArenaError`] message when the limit refuses the
    /// memory, and, like `std::format!`, if a `Display` implementation
    /// returns an error on its own.
    #[track_caller]
    pub fn format(&self, args: fmt::Arguments<'_>) -> ArenaString<'_> {
        match self.try_format(args) {
            Ok(s) => s,
            Err(err) => err.panic(),
        }
    }

    /// Formats into a new arena string, or returns why the memory was refused.
    ///
    /// # Panics
    ///
    /// Like `std::format!`, panics if a `Display` implementation returns an
    /// error although the string accepted every byte.
    pub fn try_format(&self, args: fmt::Arguments<'_>) -> Result<ArenaString<'_>, ArenaError> {
        if let Some(literal) = args.as_str() {
            let mut s = self.try_string_with_capacity(literal.len())?;
            s.try_push_str(literal)?;
            return Ok(s);
        }
        let mut s = self.string();
        s.try_write_fmt(args)?;
        Ok(s)
    }

    /// The bumpalo arena underneath, for APIs that take a `&Bump` (bumpalo's
    /// own collections, `bumpalo::format!`, `collect_in`). Allocations made
    /// through it count against the same limit, but bumpalo's own methods
    /// panic with bumpalo's bare "out of memory" when it is exceeded and are
    /// not counted in [`stats()`](super::stats()). A limit changed through
    /// `Bump::set_allocation_limit` lasts until the scope ends.
    pub fn as_bump(&self) -> &Bump {
        &self.bump
    }

    /// Builds the error for a refused allocation of `requested` bytes and
    /// counts a limit hit.
    #[cold]
    #[inline(never)]
    pub(crate) fn refused(&self, requested: usize) -> ArenaError {
        let limit = self.limit();
        let held = self.bump.allocated_bytes();
        // bumpalo reports "limit" and "allocator failed" alike. When the
        // request cannot fit in what is left of the limit, the limit refused
        // it. When it would fit, bumpalo's chunk rounding still may have hit
        // the limit; if the global allocator can give us the bytes right now,
        // that is what happened.
        let limit_refused = requested > limit.saturating_sub(held)
            || Vec::<u8>::new().try_reserve_exact(requested).is_ok();
        if limit_refused {
            self.limit_hits.set(self.limit_hits.get() + 1);
            ArenaError::limit_exceeded(limit, held, requested)
        } else {
            ArenaError::out_of_memory(requested)
        }
    }

    // ---- used by the pool, through `&mut` once the scope has ended ----

    /// Sets the byte limit for the next scope.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.bump.set_allocation_limit(Some(limit));
    }

    /// Whether `alloc_with_drop` destructors are pending.
    pub(crate) fn has_destructors(&self) -> bool {
        !self.drops.is_empty()
    }

    /// Runs the pending destructors (newest first).
    pub(crate) fn run_drops(&mut self) {
        // SAFETY: (1) `&mut self` proves no reference handed out through
        // `&self` is alive, so no listed value is used after it is dropped;
        // (2) every node lives in `self.bump`, which is reset or freed only
        // after this returns (`reset` below, and the fields drop after
        // `Drop::drop`).
        unsafe { self.drops.run() }
    }

    /// Bytes handed out since the last reset (summed over the chunks' used
    /// parts, so it includes alignment padding).
    pub(crate) fn used_bytes(&mut self) -> usize {
        self.bump.iter_allocated_chunks().map(<[_]>::len).sum()
    }

    /// Takes the limit hits counted since the last call.
    pub(crate) fn take_limit_hits(&mut self) -> u64 {
        self.limit_hits.replace(0)
    }

    /// Runs destructors, then frees every chunk but the newest and rewinds it.
    pub(crate) fn reset(&mut self) {
        self.run_drops();
        self.bump.reset();
    }
}
