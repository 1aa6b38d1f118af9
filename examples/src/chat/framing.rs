//! Cutting a byte stream into lines under a hard length limit, I/O-free.
//!
//! The runtime reads straight into [`LineFramer::spare`], tells the framer
//! how many bytes arrived with [`LineFramer::commit`], then drains
//! [`LineFramer::next_frame`]. The buffer is the line limit and no bigger, so
//! memory per client is fixed: an endless line is never buffered whole.
//!
//! The buffer exists only while it is needed: [`LineFramer::spare`]
//! allocates it, and [`LineFramer::release_if_empty`] frees it when no
//! partial line is left. A server that waits for input without a buffer
//! (`readable`, then `try_read` into `spare`) and releases it after each
//! read holds none for an idle client.
//!
//! ```text
//!   buf: [ consumed | pending bytes ......... | spare ........ ]
//!          0        start                     end              max_line
//! ```
//!
//! States: *normal* (looking for LF in `start..end`) and *discarding* (the
//! current line already overflowed; bytes are dropped until the next LF).
//! A line that fills the whole buffer without an LF yields one
//! [`Frame::TooLong`] at once and switches to discarding; the LF that ends it
//! switches back. A line counts its terminator: with `max_line = 512`, 510
//! bytes + CRLF fit, 511 bytes + CRLF do not. A trailing CR is stripped.

/// One event out of the framer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without CR/LF.
    Line(&'a [u8]),
    /// A line longer than the limit began; its bytes are being discarded up
    /// to its LF. Reply 417 (ERR_INPUTTOOLONG).
    TooLong,
}

/// A fixed-size line framer (see the module docs).
#[derive(Debug)]
pub struct LineFramer {
    /// `max_line` bytes, or empty (not allocated) between reads.
    buf: Box<[u8]>,
    max_line: usize,
    start: usize,
    end: usize,
    discarding: bool,
}

impl LineFramer {
    /// A framer for lines of at most `max_line` bytes including the
    /// terminator (at least 3). It allocates on its first
    /// [`spare`](Self::spare).
    pub fn new(max_line: usize) -> Self {
        Self {
            buf: Box::default(),
            max_line: max_line.max(3),
            start: 0,
            end: 0,
            discarding: false,
        }
    }

    /// Frees the buffer if it holds no partial line (the next
    /// [`spare`](Self::spare) allocates it again). Returns whether it did.
    ///
    /// ```
    /// use pinstack_examples::chat::framing::{Frame, LineFramer};
    /// let mut f = LineFramer::new(512);
    /// f.spare()[..4].copy_from_slice(b"a\r\nb");
    /// f.commit(4);
    /// assert_eq!(f.next_frame(), Some(Frame::Line(b"a")));
    /// assert_eq!(f.next_frame(), None);
    /// assert!(!f.release_if_empty(), "\"b\" waits for its end");
    /// f.spare()[0] = b'\n';
    /// f.commit(1);
    /// assert_eq!(f.next_frame(), Some(Frame::Line(b"b")));
    /// assert!(f.release_if_empty());
    /// ```
    pub fn release_if_empty(&mut self) -> bool {
        if self.start != self.end || self.buf.is_empty() {
            return false;
        }
        self.buf = Box::default();
        self.start = 0;
        self.end = 0;
        true
    }

    /// Free space to read into. Never empty after [`Self::next_frame`]
    /// returned `None`.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = vec![0; self.max_line].into_boxed_slice();
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`Self::spare`].
    ///
    /// # Panics
    ///
    /// If `n` is larger than the spare space last handed out.
    pub fn commit(&mut self, n: usize) {
        assert!(
            self.end + n <= self.buf.len(),
            "commit past the spare space"
        );
        self.end += n;
    }

    /// The next frame, or `None` when more input is needed.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        loop {
            let pending = &self.buf[self.start..self.end];
            match pending.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let line_start = self.start;
                    self.start += i + 1;
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    let mut line = &self.buf[line_start..line_start + i];
                    if let Some(l) = line.strip_suffix(b"\r") {
                        line = l;
                    }
                    return Some(Frame::Line(line));
                }
                None => {
                    if self.discarding {
                        self.start = 0;
                        self.end = 0;
                        return None;
                    }
                    if self.start == 0 && self.end == self.max_line {
                        self.discarding = true;
                        self.start = 0;
                        self.end = 0;
                        return Some(Frame::TooLong);
                    }
                    return None;
                }
            }
        }
    }

    /// Whether a partial line is buffered (bytes after the last LF).
    pub fn has_partial(&self) -> bool {
        self.discarding || self.start != self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(f: &mut LineFramer, mut data: &[u8]) -> Vec<Result<Vec<u8>, ()>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let spare = f.spare();
            let n = spare.len().min(data.len());
            spare[..n].copy_from_slice(&data[..n]);
            f.commit(n);
            data = &data[n..];
            while let Some(fr) = f.next_frame() {
                out.push(match fr {
                    Frame::Line(l) => Ok(l.to_vec()),
                    Frame::TooLong => Err(()),
                });
            }
        }
        out
    }

    #[test]
    fn crlf_and_bare_lf() {
        let mut f = LineFramer::new(512);
        let out = feed(&mut f, b"NICK a\r\nUSER b\nPING x\r\npartial");
        assert_eq!(
            out,
            vec![
                Ok(b"NICK a".to_vec()),
                Ok(b"USER b".to_vec()),
                Ok(b"PING x".to_vec())
            ]
        );
        assert!(f.has_partial());
        let out = feed(&mut f, b" line\r\n");
        assert_eq!(out, vec![Ok(b"partial line".to_vec())]);
        assert!(!f.has_partial());
    }

    #[test]
    fn limit_counts_the_terminator() {
        let mut f = LineFramer::new(512);
        let ok = [vec![b'a'; 510], b"\r\n".to_vec()].concat();
        assert_eq!(feed(&mut f, &ok), vec![Ok(vec![b'a'; 510])]);
        let bad = [vec![b'a'; 511], b"\r\n".to_vec()].concat();
        assert_eq!(feed(&mut f, &bad), vec![Err(())]);
        // The next line is read normally.
        assert_eq!(feed(&mut f, b"PING x\r\n"), vec![Ok(b"PING x".to_vec())]);
    }

    #[test]
    fn endless_line_reports_once_and_stays_bounded() {
        let mut f = LineFramer::new(64);
        let mut out = Vec::new();
        for _ in 0..1000 {
            out.extend(feed(&mut f, &[b'z'; 100]));
        }
        assert_eq!(out, vec![Err(())]);
        out = feed(&mut f, b"zzz\nPING y\n");
        assert_eq!(out, vec![Ok(b"PING y".to_vec())]);
    }

    #[test]
    fn byte_at_a_time() {
        let mut f = LineFramer::new(16);
        let mut out = Vec::new();
        for b in b"ab\r\ncd\n0123456789abcdefXYZ\nok\n" {
            out.extend(feed(&mut f, &[*b]));
        }
        assert_eq!(
            out,
            vec![
                Ok(b"ab".to_vec()),
                Ok(b"cd".to_vec()),
                Err(()),
                Ok(b"ok".to_vec())
            ]
        );
    }
}
