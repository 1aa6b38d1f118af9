//! Property tests of the line parser and framer.

use pinstack_examples::chat::framing::{Frame, LineFramer};
use pinstack_examples::chat::proto::{parse, LineBuf, Message, MAX_LINE};
use proptest::prelude::*;

fn middle() -> impl Strategy<Value = String> {
    "[^ \0\r\n:][^ \0\r\n]{0,12}"
}

fn trailing() -> impl Strategy<Value = String> {
    "[^\0\r\n]{0,40}"
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn formatted_messages_round_trip(
        prefix in proptest::option::of("[a-zA-Z][a-zA-Z0-9!@.]{0,20}"),
        command in "[A-Za-z]{1,10}|[0-9]{3}",
        mids in proptest::collection::vec(middle(), 0..14),
        last in proptest::option::of(trailing()),
    ) {
        let mut params: Vec<&str> = mids.iter().map(String::as_str).collect();
        if let Some(t) = &last {
            params.push(t);
        }
        let m = Message::new(prefix.as_deref(), &command, &params);
        let mut out = Vec::new();
        m.write_to(&mut out).unwrap();
        prop_assert!(out.ends_with(b"\r\n"));
        let back = parse(&out[..out.len() - 2]).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn linebuf_output_always_fits_and_parses(
        prefix in "[a-z]{1,30}![a-z]{1,10}@[a-z.]{1,40}",
        target in "#[a-z]{1,49}",
        text in "[^\0\r\n]{1,700}",
    ) {
        let mut b = LineBuf::new();
        let line = b.format(Some(&prefix), "PRIVMSG", &[&target], Some(&text)).to_vec();
        prop_assert!(line.len() <= MAX_LINE);
        prop_assert!(line.ends_with(b"\r\n"));
        let m = parse(&line[..line.len() - 2]).unwrap();
        prop_assert_eq!(m.param(0), Some(target.as_str()));
        prop_assert!(text.starts_with(m.param(1).unwrap()));
    }

    #[test]
    fn framer_matches_splitting_whatever_the_chunks(
        lines in proptest::collection::vec("[^\n]{0,80}", 0..20),
        chunk in 1usize..50,
        release in any::<bool>(),
    ) {
        let max = 64;
        let data: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
        let mut f = LineFramer::new(max);
        let mut got = Vec::new();
        for piece in data.chunks(chunk) {
            let mut piece = piece;
            while !piece.is_empty() {
                let spare = f.spare();
                let n = spare.len().min(piece.len());
                spare[..n].copy_from_slice(&piece[..n]);
                f.commit(n);
                piece = &piece[n..];
                while let Some(fr) = f.next_frame() {
                    got.push(match fr {
                        Frame::Line(l) => Some(l.to_vec()),
                        Frame::TooLong => None,
                    });
                }
                // As a server does after each read: the buffer goes away
                // between reads unless a partial line is in it.
                if release && f.release_if_empty() {
                    prop_assert!(!f.has_partial() || f.spare().len() == max);
                }
            }
        }
        let want: Vec<Option<Vec<u8>>> = lines
            .iter()
            .map(|l| {
                let b = l.as_bytes();
                if b.len() + 1 > max {
                    None
                } else {
                    Some(b.strip_suffix(b"\r").unwrap_or(b).to_vec())
                }
            })
            .collect();
        prop_assert_eq!(got, want);
    }
}
