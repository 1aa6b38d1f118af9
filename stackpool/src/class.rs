//! Stack size classes: powers of two from 8 KiB to 8 MiB of usable stack.
//!
//! A class is stored as its index (0 = 8 KiB ... 10 = 8 MiB), so it fits in
//! a byte, indexes per-class arrays directly and orders like its size.

use std::fmt;

use crate::error::PoolError;

/// log2 of the smallest class's usable bytes (8 KiB).
const MIN_SHIFT: u32 = 13;
/// log2 of the largest class's usable bytes (8 MiB).
const MAX_SHIFT: u32 = 23;

/// A stack size class: a power of two from 8 KiB to 8 MiB of usable stack
/// (the guard page comes on top).
///
/// ```
/// use pinstack_stackpool::SizeClass;
///
/// let class = SizeClass::for_hint(10_000)?;
/// assert_eq!(class.usable_bytes(), 16 * 1024);
/// assert_eq!(class.to_string(), "16 KiB");
/// assert!(SizeClass::for_hint(9 << 20).is_err());
/// # Ok::<(), pinstack_stackpool::PoolError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SizeClass(u8);

impl SizeClass {
    /// The smallest class: 8 KiB.
    pub const MIN: SizeClass = SizeClass(0);
    /// The largest class: 8 MiB.
    pub const MAX: SizeClass = SizeClass((MAX_SHIFT - MIN_SHIFT) as u8);
    /// How many classes there are (11).
    pub const COUNT: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;

    /// The smallest class with at least `bytes` usable bytes (a hint of 0
    /// gives [`SizeClass::MIN`]).
    ///
    /// # Errors
    ///
    /// [`PoolError::HintTooLarge`] when `bytes` exceeds 8 MiB.
    #[inline]
    pub fn for_hint(bytes: usize) -> Result<SizeClass, PoolError> {
        if bytes <= 1 << MIN_SHIFT {
            return Ok(SizeClass::MIN);
        }
        if bytes > 1 << MAX_SHIFT {
            return Err(PoolError::HintTooLarge {
                requested: bytes,
                max: SizeClass::MAX.usable_bytes(),
            });
        }
        // ceil(log2(bytes)) for bytes > 1.
        let shift = usize::BITS - (bytes - 1).leading_zeros();
        Ok(SizeClass((shift - MIN_SHIFT) as u8))
    }

    /// Usable stack bytes of this class (excluding the guard page).
    #[inline]
    pub const fn usable_bytes(self) -> usize {
        1 << (MIN_SHIFT + self.0 as u32)
    }

    /// The class's position, 0 for 8 KiB up to `COUNT - 1` for 8 MiB.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The class at position `i`, if `i < COUNT`.
    #[inline]
    pub const fn from_index(i: usize) -> Option<SizeClass> {
        if i < SizeClass::COUNT {
            Some(SizeClass(i as u8))
        } else {
            None
        }
    }

    /// Every class, smallest first.
    pub fn all() -> impl Iterator<Item = SizeClass> {
        (0..SizeClass::COUNT as u8).map(SizeClass)
    }
}

impl fmt::Display for SizeClass {
    /// `"8 KiB"` ... `"512 KiB"`, `"1 MiB"` ... `"8 MiB"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kib = self.usable_bytes() / 1024;
        if kib >= 1024 {
            write!(f, "{} MiB", kib / 1024)
        } else {
            write!(f, "{kib} KiB")
        }
    }
}

/// Usable bytes of a slot of `class` on a system with `page`-byte pages (at
/// least one page).
#[inline]
pub(crate) const fn usable_for(class: SizeClass, page: usize) -> usize {
    let usable = class.usable_bytes();
    // One page more than the class: the stack's starting point is moved down
    // by a per-slot "color" of up to a page (see `PooledStack::base`), and
    // the class size must stay usable below it.
    (if usable > page { usable } else { page }) + page
}

/// Distance between slots of `class`: one guard page plus the usable bytes.
#[inline]
pub(crate) const fn stride_for(class: SizeClass, page: usize) -> usize {
    page + usable_for(class, page)
}

/// Writes the class as `"16 KiB"` into `buf` without allocating (for the
/// signal handler); returns the number of bytes written.
pub(crate) fn write_class_name(class: SizeClass, buf: &mut [u8; 16]) -> usize {
    let kib = class.usable_bytes() / 1024;
    let (num, unit): (usize, &[u8]) = if kib >= 1024 {
        (kib / 1024, b" MiB")
    } else {
        (kib, b" KiB")
    };
    let mut digits = [0u8; 8];
    let mut n = num;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut out = 0;
    for i in (0..len).rev() {
        buf[out] = digits[i];
        out += 1;
    }
    buf[out..out + unit.len()].copy_from_slice(unit);
    out + unit.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_round_up_to_the_next_power_of_two() {
        let cases = [
            (0, 8 << 10),
            (1, 8 << 10),
            (8 << 10, 8 << 10),
            ((8 << 10) + 1, 16 << 10),
            (9_000, 16 << 10),
            (16 << 10, 16 << 10),
            ((1 << 20) - 1, 1 << 20),
            (1 << 20, 1 << 20),
            ((1 << 20) + 1, 2 << 20),
            (8 << 20, 8 << 20),
        ];
        for (hint, usable) in cases {
            let class = SizeClass::for_hint(hint).unwrap();
            assert_eq!(class.usable_bytes(), usable, "hint {hint}");
        }
    }

    #[test]
    fn hint_above_8_mib_is_an_error_naming_the_maximum() {
        let err = SizeClass::for_hint((8 << 20) + 1).unwrap_err();
        match err {
            PoolError::HintTooLarge { requested, max } => {
                assert_eq!(requested, (8 << 20) + 1);
                assert_eq!(max, 8 << 20);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err_text((8 << 20) + 1).contains("8388608"));
        assert!(SizeClass::for_hint(usize::MAX).is_err());
    }

    fn err_text(hint: usize) -> String {
        SizeClass::for_hint(hint).unwrap_err().to_string()
    }

    #[test]
    fn indices_round_trip_and_order_matches_size() {
        let all: Vec<_> = SizeClass::all().collect();
        assert_eq!(all.len(), SizeClass::COUNT);
        assert_eq!(all.len(), 11);
        assert_eq!(all[0], SizeClass::MIN);
        assert_eq!(all[10], SizeClass::MAX);
        for (i, c) in all.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(SizeClass::from_index(i), Some(*c));
            if i > 0 {
                assert!(all[i - 1] < *c);
                assert_eq!(all[i - 1].usable_bytes() * 2, c.usable_bytes());
            }
        }
        assert_eq!(SizeClass::from_index(SizeClass::COUNT), None);
    }

    #[test]
    fn display_and_signal_safe_name_agree() {
        for class in SizeClass::all() {
            let mut buf = [0u8; 16];
            let n = write_class_name(class, &mut buf);
            assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), class.to_string());
        }
        assert_eq!(SizeClass::MIN.to_string(), "8 KiB");
        assert_eq!(SizeClass::from_index(6).unwrap().to_string(), "512 KiB");
        assert_eq!(SizeClass::MAX.to_string(), "8 MiB");
    }
}
