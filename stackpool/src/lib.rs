//! INTERIM stand-in with the agreed API, replaced by the real pool at merge.
#![allow(missing_docs, missing_debug_implementations)]
use corosensei::stack::{DefaultStack, Stack, StackPointer};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SizeClass(u8);
impl SizeClass {
    pub fn for_hint(bytes: usize) -> Result<SizeClass, PoolError> {
        let b = bytes.max(8192).next_power_of_two();
        if b > 8 << 20 {
            return Err(PoolError::HintTooLarge { hint: bytes });
        }
        Ok(SizeClass((b.trailing_zeros() - 13) as u8))
    }
    pub fn usable_bytes(self) -> usize {
        8192 << self.0
    }
}
#[derive(Debug)]
pub enum PoolError {
    HintTooLarge { hint: usize },
    Mmap(std::io::Error),
}
impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}
impl std::error::Error for PoolError {}
#[derive(Clone, Default)]
pub struct StackPool;
#[derive(Debug, Default, Clone, Copy)]
pub struct PoolStats;
impl StackPool {
    pub fn new() -> std::io::Result<StackPool> {
        Ok(StackPool)
    }
    pub fn acquire(&self, hint: usize) -> Result<PooledStack, PoolError> {
        let c = SizeClass::for_hint(hint)?;
        DefaultStack::new(c.usable_bytes())
            .map(|s| PooledStack(s, c))
            .map_err(PoolError::Mmap)
    }
    pub fn stats(&self) -> PoolStats {
        PoolStats
    }
}
pub struct PooledStack(DefaultStack, SizeClass);
impl PooledStack {
    pub fn class(&self) -> SizeClass {
        self.1
    }
}
// SAFETY: forwards to DefaultStack, which has a guard page.
unsafe impl Stack for PooledStack {
    fn base(&self) -> StackPointer {
        self.0.base()
    }
    fn limit(&self) -> StackPointer {
        self.0.limit()
    }
}
/// # Safety
/// label valid while set.
pub unsafe fn set_overflow_label(_label: *const u8, _len: usize) {}
