//! The IRC line protocol subset the chat server speaks: a zero-copy parser
//! and a formatter into a caller-provided buffer.
//!
//! Framing (RFC 1459 §2.3, RFC 2812 §2.3): one message per line, ended by
//! CRLF (a bare LF is accepted), at most [`MAX_LINE`] bytes including the
//! CRLF. The framer ([`super::framing`]) cuts lines and enforces that limit;
//! this module sees one line without its terminator.
//!
//! ```text
//! message = [ "@" tags SPACE ] [ ":" prefix SPACE ] command *( SPACE param )
//! param   = middle / ":" trailing      (at most 15; the 15th may omit ":")
//! ```
//!
//! [`parse`] validates UTF-8 once and then hands out `&str` slices of the
//! input: no allocation. Formatting goes through [`write_message`] into any
//! `io::Write` (an arena buffer in the pinstack server), or into a
//! [`LineBuf`], a fixed 512-byte stack buffer that truncates user text at a
//! character boundary so a relayed line never exceeds the limit.

use std::fmt;
use std::io::{self, Write};

/// Longest line, CRLF included (RFC 1459).
pub const MAX_LINE: usize = 512;
/// Most parameters in one message.
pub const MAX_PARAMS: usize = 15;

/// Why a line is not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Empty or only spaces: ignored by servers.
    Empty,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// A NUL, CR or LF inside the line.
    ForbiddenByte,
    /// A prefix or tags with no command after them.
    NoCommand,
    /// The command is neither letters nor three digits.
    BadCommand,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Empty => "empty line",
            ParseError::InvalidUtf8 => "line is not valid UTF-8",
            ParseError::ForbiddenByte => "line contains NUL, CR or LF",
            ParseError::NoCommand => "line has no command",
            ParseError::BadCommand => "command must be letters or a 3-digit numeric",
        })
    }
}

impl std::error::Error for ParseError {}

/// One parsed message, borrowing the line it came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    prefix: Option<&'a str>,
    command: &'a str,
    params: [&'a str; MAX_PARAMS],
    len: u8,
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("prefix", &self.prefix)
            .field("command", &self.command)
            .field("params", &self.params())
            .finish()
    }
}

impl<'a> Message<'a> {
    /// A message to format.
    ///
    /// # Panics
    ///
    /// If `params` has more than [`MAX_PARAMS`] entries.
    pub fn new(prefix: Option<&'a str>, command: &'a str, params: &[&'a str]) -> Self {
        assert!(params.len() <= MAX_PARAMS, "at most 15 IRC parameters");
        let mut p = [""; MAX_PARAMS];
        p[..params.len()].copy_from_slice(params);
        Self {
            prefix,
            command,
            params: p,
            len: params.len() as u8,
        }
    }

    /// The prefix (`nick!user@host` or a server name), without the colon.
    pub fn prefix(&self) -> Option<&'a str> {
        self.prefix
    }

    /// The command as sent (compare with `eq_ignore_ascii_case`).
    pub fn command(&self) -> &'a str {
        self.command
    }

    /// Whether the command is `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.command.eq_ignore_ascii_case(name)
    }

    /// All parameters, the trailing one last, colons removed.
    pub fn params(&self) -> &[&'a str] {
        &self.params[..self.len as usize]
    }

    /// Parameter `i`, if present.
    pub fn param(&self, i: usize) -> Option<&'a str> {
        self.params().get(i).copied()
    }

    /// Formats the message with its CRLF; the last parameter gets a colon
    /// when it needs one (empty, holds a space, or starts with `:`).
    ///
    /// # Errors
    ///
    /// The writer's error ([`LineBuf`] fails with `WriteZero` when full).
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let params = self.params();
        match params.split_last() {
            Some((last, middle)) if needs_colon(last) => {
                write_message(w, self.prefix, self.command, middle, Some(last))
            }
            _ => write_message(w, self.prefix, self.command, params, None),
        }
    }
}

fn needs_colon(p: &str) -> bool {
    p.is_empty() || p.starts_with(':') || p.contains(' ')
}

/// Parses one line (without its CRLF or LF; a trailing CR is tolerated).
///
/// ```
/// use pinstack_examples::chat::proto::parse;
/// let m = parse(b":alice!a@h PRIVMSG #rust :hello there").unwrap();
/// assert_eq!(m.prefix(), Some("alice!a@h"));
/// assert!(m.is("privmsg"));
/// assert_eq!(m.params(), ["#rust", "hello there"]);
/// ```
///
/// # Errors
///
/// A [`ParseError`] saying what is wrong with the line.
pub fn parse(line: &[u8]) -> Result<Message<'_>, ParseError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
        return Err(ParseError::ForbiddenByte);
    }
    let line = std::str::from_utf8(line).map_err(|_| ParseError::InvalidUtf8)?;
    let mut rest = line.trim_start_matches(' ');
    if rest.is_empty() {
        return Err(ParseError::Empty);
    }
    if let Some(tagged) = rest.strip_prefix('@') {
        // IRCv3 message tags: never negotiated here, skipped if sent anyway.
        rest = tagged
            .split_once(' ')
            .map_or("", |(_, r)| r)
            .trim_start_matches(' ');
    }
    let mut prefix = None;
    if let Some(p) = rest.strip_prefix(':') {
        let (p, r) = p.split_once(' ').unwrap_or((p, ""));
        prefix = Some(p);
        rest = r.trim_start_matches(' ');
    }
    if rest.is_empty() {
        return Err(ParseError::NoCommand);
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let alpha = command.bytes().all(|b| b.is_ascii_alphabetic());
    let numeric = command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit());
    if !(alpha || numeric) {
        return Err(ParseError::BadCommand);
    }
    let mut params = [""; MAX_PARAMS];
    let mut len = 0;
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(t) = rest.strip_prefix(':') {
            params[len] = t;
            len += 1;
            break;
        }
        if len == MAX_PARAMS - 1 {
            // RFC 2812: the 15th parameter is the rest of the line.
            params[len] = rest;
            len += 1;
            break;
        }
        let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
        params[len] = p;
        len += 1;
        rest = r;
    }
    Ok(Message {
        prefix,
        command,
        params,
        len: len as u8,
    })
}

/// Writes `:prefix COMMAND middle... :trailing\r\n` to `w`.
///
/// `middle` parameters must be non-empty, without spaces, and not start with
/// `:`; `trailing` may hold anything but CR, LF and NUL.
///
/// # Errors
///
/// The writer's error.
pub fn write_message<W: Write>(
    w: &mut W,
    prefix: Option<&str>,
    command: &str,
    middle: &[&str],
    trailing: Option<&str>,
) -> io::Result<()> {
    if let Some(p) = prefix {
        w.write_all(b":")?;
        w.write_all(p.as_bytes())?;
        w.write_all(b" ")?;
    }
    w.write_all(command.as_bytes())?;
    for m in middle {
        w.write_all(b" ")?;
        w.write_all(m.as_bytes())?;
    }
    if let Some(t) = trailing {
        w.write_all(b" :")?;
        w.write_all(t.as_bytes())?;
    }
    w.write_all(b"\r\n")
}

/// A fixed [`MAX_LINE`]-byte buffer for one outgoing line.
///
/// [`LineBuf::format`] never fails: it shortens the trailing text (at a
/// character boundary) so that the line with its CRLF fits. As an
/// `io::Write` it refuses bytes past the limit (`WriteZero`).
///
/// ```
/// use pinstack_examples::chat::proto::LineBuf;
/// let mut b = LineBuf::new();
/// let long = "é".repeat(400);
/// let line = b.format(Some("n!u@h"), "PRIVMSG", &["#r"], Some(&long));
/// assert_eq!(line.len(), 511); // 'é' is 2 bytes: one byte stays unused
/// assert!(line.ends_with(b"\r\n"));
/// assert!(std::str::from_utf8(line).is_ok());
/// ```
pub struct LineBuf {
    buf: [u8; MAX_LINE],
    len: usize,
}

impl fmt::Debug for LineBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LineBuf")
            .field(&String::from_utf8_lossy(self.as_bytes()))
            .finish()
    }
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            buf: [0; MAX_LINE],
            len: 0,
        }
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push_fit(&mut self, s: &str, room_for_crlf: bool) {
        let cap = MAX_LINE - if room_for_crlf { 2 } else { 0 };
        let space = cap.saturating_sub(self.len);
        let mut n = s.len().min(space);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
    }

    /// Clears the buffer and formats one line into it, as
    /// [`write_message`] does, cutting whatever does not fit (the trailing
    /// text first) so that the CRLF-terminated line is at most
    /// [`MAX_LINE`] bytes. Returns the line.
    pub fn format(
        &mut self,
        prefix: Option<&str>,
        command: &str,
        middle: &[&str],
        trailing: Option<&str>,
    ) -> &[u8] {
        self.len = 0;
        if let Some(p) = prefix {
            self.push_fit(":", true);
            self.push_fit(p, true);
            self.push_fit(" ", true);
        }
        self.push_fit(command, true);
        for m in middle {
            self.push_fit(" ", true);
            self.push_fit(m, true);
        }
        if let Some(t) = trailing {
            self.push_fit(" :", true);
            self.push_fit(t, true);
        }
        self.push_fit("\r\n", false);
        self.as_bytes()
    }
}

impl Write for LineBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(MAX_LINE - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_params() {
        let m = parse(b"NICK alice").unwrap();
        assert_eq!(
            (m.prefix(), m.command(), m.params()),
            (None, "NICK", &["alice"][..])
        );
        let m = parse(b"USER a 0 * :Alice Liddell\r").unwrap();
        assert_eq!(m.params(), ["a", "0", "*", "Alice Liddell"]);
        let m = parse(b"join #a,#b").unwrap();
        assert!(m.is("JOIN"));
        assert_eq!(m.params(), ["#a,#b"]);
        let m = parse(b":srv 001 nick :Welcome").unwrap();
        assert_eq!(m.command(), "001");
        assert_eq!(m.prefix(), Some("srv"));
    }

    #[test]
    fn trailing_may_be_empty_or_hold_colons() {
        let m = parse(b"PRIVMSG #r :").unwrap();
        assert_eq!(m.params(), ["#r", ""]);
        let m = parse(b"PRIVMSG #r ::-) a:b").unwrap();
        assert_eq!(m.params(), ["#r", ":-) a:b"]);
    }

    #[test]
    fn extra_spaces_are_tolerated() {
        let m = parse(b"  PRIVMSG   #r   x  ").unwrap();
        assert_eq!(m.params(), ["#r", "x"]);
        assert_eq!(parse(b"   "), Err(ParseError::Empty));
        assert_eq!(parse(b""), Err(ParseError::Empty));
    }

    #[test]
    fn fifteenth_param_is_the_rest() {
        let line = b"CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 fifteen and more";
        let m = parse(line).unwrap();
        assert_eq!(m.params().len(), 15);
        assert_eq!(m.param(14), Some("fifteen and more"));
    }

    #[test]
    fn rejects_bad_lines() {
        assert_eq!(parse(b"PRIVMSG #r :\xff\xfe"), Err(ParseError::InvalidUtf8));
        assert_eq!(parse(b":only-prefix"), Err(ParseError::NoCommand));
        assert_eq!(parse(b"PRIV\x00MSG"), Err(ParseError::ForbiddenByte));
        assert_eq!(parse(b"a\rb"), Err(ParseError::ForbiddenByte));
        assert_eq!(parse(b"12 x"), Err(ParseError::BadCommand));
        assert_eq!(parse(b"N!CK x"), Err(ParseError::BadCommand));
    }

    #[test]
    fn tags_are_skipped() {
        let m = parse(b"@time=x;a=b :p PING :t").unwrap();
        assert_eq!(
            (m.prefix(), m.command(), m.params()),
            (Some("p"), "PING", &["t"][..])
        );
    }

    #[test]
    fn formats_lines() {
        let mut v = Vec::new();
        write_message(&mut v, Some("srv"), "001", &["bob"], Some("Welcome bob")).unwrap();
        assert_eq!(v, b":srv 001 bob :Welcome bob\r\n");
        let mut v = Vec::new();
        Message::new(None, "PING", &["tok"])
            .write_to(&mut v)
            .unwrap();
        assert_eq!(v, b"PING tok\r\n");
        let mut v = Vec::new();
        Message::new(None, "PRIVMSG", &["#r", "a b"])
            .write_to(&mut v)
            .unwrap();
        assert_eq!(v, b"PRIVMSG #r :a b\r\n");
    }

    #[test]
    fn linebuf_truncates_trailing_only() {
        let mut b = LineBuf::new();
        let text = "x".repeat(600);
        let line = b
            .format(Some("n!u@h"), "PRIVMSG", &["#room"], Some(&text))
            .to_vec();
        assert_eq!(line.len(), MAX_LINE);
        assert!(line.starts_with(b":n!u@h PRIVMSG #room :xxx"));
        assert!(line.ends_with(b"x\r\n"));
        let short = b.format(None, "PONG", &["srv"], Some("t"));
        assert_eq!(short, b"PONG srv :t\r\n");
    }

    #[test]
    fn linebuf_as_writer_refuses_overflow() {
        let mut b = LineBuf::new();
        let long = "y".repeat(600);
        let err = Message::new(None, "X", &[&long])
            .write_to(&mut b)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
    }
}
