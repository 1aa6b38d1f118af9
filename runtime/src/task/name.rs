//! A task's name as the task header keeps it: a `&'static str` borrowed
//! (a literal, the usual case, costs no allocation per spawn) or a string
//! owned by the task. Two words, like the `Box<str>` it replaces, so the
//! header does not grow: the top bit of the length says which.
//!
//! Measured before it: naming a task (`Builder::name("chat-writer")`) was
//! one `malloc` and one `free` per spawn; the chat server names the writer
//! it starts for each burst of output, about one spawn per delivery.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;

/// Set in `len` when the bytes are a leaked `Box<str>` this name owns.
const OWNED: usize = 1 << (usize::BITS - 1);

/// A task's name (see the module docs).
pub(crate) struct TaskName {
    /// The first byte of the name (dangling but aligned when empty).
    ptr: NonNull<u8>,
    /// Length in bytes, with `OWNED` when `ptr` came from `Box::leak`.
    len: usize,
}

// SAFETY: a `TaskName` is either a `&'static str` or a `Box<str>` it owns
// alone; both are `Send` and `Sync`, and `TaskName` offers only `&str`.
unsafe impl Send for TaskName {}
// SAFETY: as above.
unsafe impl Sync for TaskName {}

impl TaskName {
    /// Borrows a static name, or takes ownership of an owned one.
    pub(crate) fn new(name: Cow<'static, str>) -> TaskName {
        match name {
            Cow::Borrowed(s) => TaskName {
                ptr: NonNull::from(s.as_bytes()).cast(),
                len: s.len(),
            },
            Cow::Owned(s) => {
                let len = s.len();
                // A `str` is shorter than `isize::MAX` bytes: the top bit of
                // its length is free.
                debug_assert_eq!(len & OWNED, 0);
                // Leaked here, taken back as a `Box` in `drop`.
                let leaked: &mut str = Box::leak(s.into_boxed_str());
                TaskName {
                    ptr: NonNull::from(leaked).cast::<u8>(),
                    len: len | OWNED,
                }
            }
        }
    }

    fn str_len(&self) -> usize {
        self.len & !OWNED
    }
}

impl From<&'static str> for TaskName {
    fn from(s: &'static str) -> TaskName {
        TaskName::new(Cow::Borrowed(s))
    }
}

impl Deref for TaskName {
    type Target = str;

    fn deref(&self) -> &str {
        // SAFETY: `ptr` and the length came from a `str` (a static one, or
        // the box this name owns until it drops), so they describe valid,
        // initialized UTF-8 that outlives `&self`.
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.ptr.as_ptr(),
                self.str_len(),
            ))
        }
    }
}

impl Drop for TaskName {
    fn drop(&mut self) {
        if self.len & OWNED != 0 {
            let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.str_len());
            // SAFETY: `OWNED` is set only by `new`, for a pointer from
            // `Box::leak` of a `Box<str>` of this length, taken back only
            // here, once. `str` and `[u8]` have the same layout.
            drop(unsafe { Box::from_raw(raw as *mut str) });
        }
    }
}

impl fmt::Debug for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    #[test]
    fn static_names_are_borrowed_and_owned_names_owned() {
        let lit = "chat-writer";
        let a = TaskName::new(Cow::Borrowed(lit));
        assert_eq!(&*a, "chat-writer");
        assert_eq!(
            a.ptr.as_ptr().cast_const(),
            lit.as_ptr(),
            "no copy of a literal"
        );
        let b = TaskName::new(Cow::Owned(format!("conn-{}", 42)));
        assert_eq!(&*b, "conn-42");
        let empty = TaskName::new(Cow::Owned(String::new()));
        assert_eq!(&*empty, "");
        assert_eq!(format!("{b:?}"), "\"conn-42\"");
        assert_eq!(size_of::<Option<TaskName>>(), size_of::<Box<str>>());
    }
}
