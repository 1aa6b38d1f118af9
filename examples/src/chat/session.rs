//! One client's protocol state machine, I/O-free.
//!
//! ```text
//!            NICK ok / USER ok          both given           QUIT, EOF,
//!   [new] ───────────────────▶ [half] ─────────────▶ [registered] ──▶ disconnect()
//!     │  (anything else: 451)                        (JOIN, PART, PRIVMSG,
//!     └──────────────── QUIT / EOF / ping timeout ──▶  NICK, PING, ...)
//! ```
//!
//! A `Session` is owned by the task (or coroutine) that reads its socket;
//! only that task touches it. It talks to other clients only through the
//! shared [`Hub`], and to its own client only through its [`Outbox`]: every
//! reply is a non-blocking push. The runtime's reader feeds it lines
//! ([`Session::on_line`], [`Session::on_line_too_long`]), idle events
//! ([`Session::on_idle`], [`Session::on_ping_timeout`]), and finally calls
//! [`Session::disconnect`], which removes the client from every room
//! (telling the others with QUIT) and gives its nickname back.

use std::sync::Arc;

use super::hub::{fold, ClientId, Hub, NickInUse, NoSuchNick, Room};
use super::outbox::{Line, Outbox};
use super::proto::{self, Message, ParseError};
use super::reply::*;
use super::scratch::{Heap, Scratch};

/// Software version shown in 002/004.
const VERSION: &str = "pinstack-chat-0.1";

/// What the runtime should do after an event.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The client asked to leave (or must): stop reading, call
    /// [`Session::disconnect`], let the writer flush what is queued, close.
    Close,
}

/// One connected client (see the module docs).
pub struct Session<O: Outbox> {
    id: ClientId,
    outbox: O,
    host: Box<str>,
    nick: Option<Arc<str>>,
    user: Option<Box<str>>,
    prefix: Box<str>,
    registered: bool,
    rooms: Vec<Arc<Room<O>>>,
    quit_reason: Option<String>,
}

impl<O: Outbox> std::fmt::Debug for Session<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("nick", &self.nick)
            .field("registered", &self.registered)
            .field("rooms", &self.rooms.len())
            .finish()
    }
}

/// RFC 2812 nickname: letter or special first, then letters, digits,
/// specials and `-`.
fn valid_nick(n: &str, max: usize) -> bool {
    let special = |b: u8| b"[]\\`_^{|}".contains(&b);
    let mut bytes = n.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || special(b) => {}
        _ => return false,
    }
    n.len() <= max && bytes.all(|b| b.is_ascii_alphanumeric() || special(b) || b == b'-')
}

/// `#` then 1.. bytes without space, comma, BEL or colon.
fn valid_channel(c: &str, max: usize) -> bool {
    c.len() >= 2
        && c.len() <= max
        && c.starts_with('#')
        && !c
            .bytes()
            .any(|b| b == b' ' || b == b',' || b == 7 || b == b':' || b < 32)
}

impl<O: Outbox> Session<O> {
    /// A new, unregistered client connected from `host` (shown in its
    /// `nick!user@host` prefix).
    pub fn new(hub: &Hub<O>, outbox: O, host: &str) -> Self {
        Self {
            id: hub.next_id(),
            outbox,
            host: host.into(),
            nick: None,
            user: None,
            prefix: Box::from(""),
            registered: false,
            rooms: Vec::new(),
            quit_reason: None,
        }
    }

    /// The nickname, once given.
    pub fn nick(&self) -> Option<&str> {
        self.nick.as_deref()
    }

    /// Whether NICK and USER both went through.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// Names of the rooms the client is in.
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.rooms.iter().map(|r| r.name())
    }

    fn target(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }

    fn send(&self, hub: &Hub<O>, l: &Line) {
        hub.deliver(&self.outbox, l);
    }

    /// Sends `:server CODE <nick> middle... :trailing`.
    fn numeric<S: Scratch>(
        &self,
        hub: &Hub<O>,
        sx: &S,
        code: &str,
        middle: &[&str],
        trailing: &str,
    ) {
        let mut params: [&str; 4] = [self.target(), "", "", ""];
        let n = middle.len().min(3);
        params[1..=n].copy_from_slice(&middle[..n]);
        let l = sx.line(
            Some(&hub.config().server_name),
            code,
            &params[..=n],
            Some(trailing),
        );
        self.send(hub, &l);
    }

    fn notice<S: Scratch>(&self, hub: &Hub<O>, sx: &S, text: &str) {
        let l = sx.line(
            Some(&hub.config().server_name),
            "NOTICE",
            &[self.target()],
            Some(text),
        );
        self.send(hub, &l);
    }

    /// Handles one line from the client (without its CRLF), formatting the
    /// replies on the stack ([`Heap`]).
    pub fn on_line(&mut self, hub: &Hub<O>, raw: &[u8]) -> Flow {
        self.on_line_in(hub, raw, &Heap)
    }

    /// [`Session::on_line`] with the replies formatted in `sx`, scratch
    /// memory that lives as long as this one message (a per-request arena).
    pub fn on_line_in<S: Scratch>(&mut self, hub: &Hub<O>, raw: &[u8], sx: &S) -> Flow {
        let msg = match proto::parse(raw) {
            Ok(m) => m,
            Err(ParseError::Empty) => return Flow::Continue,
            Err(ParseError::InvalidUtf8) => {
                self.notice(hub, sx, "Line is not valid UTF-8; it was ignored");
                return Flow::Continue;
            }
            Err(e) => {
                self.notice(hub, sx, &format!("Malformed line ({e}); it was ignored"));
                return Flow::Continue;
            }
        };
        let mut up = [0u8; 8];
        let cmd = msg.command();
        let known = cmd.len() <= up.len();
        if known {
            up[..cmd.len()].copy_from_slice(cmd.as_bytes());
            up.make_ascii_uppercase();
        }
        let key: &[u8] = if known { &up[..cmd.len()] } else { b"" };
        match key {
            b"NICK" => self.cmd_nick(hub, sx, &msg),
            b"USER" => self.cmd_user(hub, sx, &msg),
            b"PASS" => {}
            b"CAP" => self.cmd_cap(hub, sx, &msg),
            b"PING" => self.cmd_ping(hub, sx, &msg),
            b"PONG" => {}
            b"QUIT" => return self.cmd_quit(hub, sx, &msg),
            _ if !self.registered => {
                self.numeric(hub, sx, ERR_NOTREGISTERED, &[], "You have not registered")
            }
            b"JOIN" => self.cmd_join(hub, sx, &msg),
            b"PART" => self.cmd_part(hub, sx, &msg),
            b"PRIVMSG" => self.cmd_privmsg(hub, sx, &msg, "PRIVMSG"),
            b"NOTICE" => self.cmd_privmsg(hub, sx, &msg, "NOTICE"),
            b"NAMES" => self.cmd_names(hub, sx, &msg),
            b"MODE" => self.cmd_mode(hub, sx, &msg),
            b"WHO" => {
                let mask = msg.param(0).unwrap_or("*");
                self.numeric(hub, sx, RPL_ENDOFWHO, &[mask], "End of WHO list");
            }
            _ => self.numeric(hub, sx, ERR_UNKNOWNCOMMAND, &[cmd], "Unknown command"),
        }
        Flow::Continue
    }

    /// The client sent a line over the limit (its bytes are being dropped).
    pub fn on_line_too_long(&mut self, hub: &Hub<O>) {
        self.numeric(hub, &Heap, ERR_INPUTTOOLONG, &[], "Input line was too long");
    }

    /// The client was idle for the idle interval: ask it for a PONG.
    pub fn on_idle(&mut self, hub: &Hub<O>) {
        let sx = &Heap;
        let server = hub.config().server_name.as_str();
        let l = sx.line(None, "PING", &[], Some(server));
        self.send(hub, &l);
    }

    /// The client did not answer a PING in time. The caller then stops
    /// reading and calls [`Session::disconnect`].
    pub fn on_ping_timeout(&mut self, hub: &Hub<O>, after_secs: u64) {
        let reason = format!("Ping timeout: {after_secs} seconds");
        self.farewell(hub, &Heap, &reason);
        self.quit_reason = Some(reason);
    }

    /// The server is shutting down. The caller then stops reading and calls
    /// [`Session::disconnect`].
    pub fn on_server_shutdown(&mut self, hub: &Hub<O>) {
        self.farewell(hub, &Heap, "Server shutting down");
        self.quit_reason = Some("Server shutting down".into());
    }

    fn farewell<S: Scratch>(&self, hub: &Hub<O>, sx: &S, reason: &str) {
        let text = format!("Closing Link: {} ({reason})", self.host);
        let l = sx.line(None, "ERROR", &[], Some(&text));
        self.send(hub, &l);
    }

    /// Removes the client from the hub: QUIT goes to everyone sharing a
    /// room with it, its rooms and nickname are released. `reason` is used
    /// unless the session already has one (QUIT, ping timeout).
    pub fn disconnect(mut self, hub: &Hub<O>, reason: &str) {
        let reason = self.quit_reason.take().unwrap_or_else(|| reason.to_owned());
        let rooms = std::mem::take(&mut self.rooms);
        if !rooms.is_empty() {
            let l = Heap.line(Some(&self.prefix), "QUIT", &[], Some(&reason));
            hub.leave_all(&rooms, self.id, Some(&l));
        }
        if let Some(n) = &self.nick {
            hub.release_nick(n, self.id);
        }
    }

    fn cmd_nick<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S, msg: &Message<'_>) {
        let Some(new) = msg.param(0).filter(|n| !n.is_empty()) else {
            self.numeric(hub, sx, ERR_NONICKNAMEGIVEN, &[], "No nickname given");
            return;
        };
        if !valid_nick(new, hub.config().nick_len) {
            self.numeric(hub, sx, ERR_ERRONEUSNICKNAME, &[new], "Erroneous nickname");
            return;
        }
        if self.nick.as_deref() == Some(new) {
            return;
        }
        if let Err(NickInUse) = hub.claim_nick(new, self.id, &self.outbox) {
            self.numeric(
                hub,
                sx,
                ERR_NICKNAMEINUSE,
                &[new],
                "Nickname is already in use",
            );
            return;
        }
        let new: Arc<str> = Arc::from(new);
        let old = self.nick.replace(new.clone());
        if let Some(old) = old {
            if fold(&old) != fold(&new) {
                hub.release_nick(&old, self.id);
            }
            if self.registered {
                let l = sx.line(Some(&self.prefix), "NICK", &[], Some(&new));
                self.send(hub, &l);
                hub.rename(&self.rooms, self.id, &new, &l);
                self.set_prefix();
            }
        }
        self.try_register(hub, sx);
    }

    fn cmd_user<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S, msg: &Message<'_>) {
        if self.registered || self.user.is_some() {
            self.numeric(hub, sx, ERR_ALREADYREGISTRED, &[], "You may not reregister");
            return;
        }
        if msg.params().len() < 4 {
            self.numeric(
                hub,
                sx,
                ERR_NEEDMOREPARAMS,
                &["USER"],
                "Not enough parameters",
            );
            return;
        }
        let user: String = msg.params()[0]
            .chars()
            .take(10)
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.user = Some(if user.is_empty() {
            "user".into()
        } else {
            user.into()
        });
        self.try_register(hub, sx);
    }

    fn set_prefix(&mut self) {
        self.prefix = format!(
            "{}!{}@{}",
            self.nick.as_deref().unwrap_or("*"),
            self.user.as_deref().unwrap_or("user"),
            self.host
        )
        .into();
    }

    fn try_register<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S) {
        if self.registered || self.nick.is_none() || self.user.is_none() {
            return;
        }
        self.registered = true;
        self.set_prefix();
        let c = hub.config();
        let s = c.server_name.as_str();
        self.numeric(
            hub,
            sx,
            RPL_WELCOME,
            &[],
            &format!("Welcome to the {} IRC network {}", c.network, self.prefix),
        );
        self.numeric(
            hub,
            sx,
            RPL_YOURHOST,
            &[],
            &format!("Your host is {s}, running version {VERSION}"),
        );
        self.numeric(
            hub,
            sx,
            RPL_CREATED,
            &[],
            "This server was created at startup",
        );
        let l = sx.line(
            Some(s),
            RPL_MYINFO,
            &[self.target(), s, VERSION, "i", "n"],
            None,
        );
        self.send(hub, &l);
        let tokens = [
            "CHANTYPES=#".to_owned(),
            format!("NICKLEN={}", c.nick_len),
            format!("CHANNELLEN={}", c.channel_len),
            format!("CHANLIMIT=#:{}", c.max_rooms_per_client),
            format!("MAXTARGETS={}", c.max_targets),
            "CASEMAPPING=ascii".to_owned(),
        ];
        let mut middle: Vec<&str> = vec![self.target()];
        middle.extend(tokens.iter().map(String::as_str));
        let l = sx.line(
            Some(s),
            RPL_ISUPPORT,
            &middle,
            Some("are supported by this server"),
        );
        self.send(hub, &l);
        self.numeric(hub, sx, ERR_NOMOTD, &[], "MOTD File is missing");
    }

    fn cmd_cap<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S, msg: &Message<'_>) {
        let sub = msg.param(0).unwrap_or("");
        let s = hub.config().server_name.as_str();
        let l = if sub.eq_ignore_ascii_case("LS") {
            sx.line(Some(s), "CAP", &[self.target(), "LS"], Some(""))
        } else if sub.eq_ignore_ascii_case("LIST") {
            sx.line(Some(s), "CAP", &[self.target(), "LIST"], Some(""))
        } else if sub.eq_ignore_ascii_case("REQ") {
            sx.line(
                Some(s),
                "CAP",
                &[self.target(), "NAK"],
                Some(msg.param(1).unwrap_or("")),
            )
        } else if sub.eq_ignore_ascii_case("END") {
            return;
        } else {
            self.numeric(hub, sx, ERR_INVALIDCAPCMD, &[sub], "Invalid CAP command");
            return;
        };
        self.send(hub, &l);
    }

    fn cmd_ping<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S, msg: &Message<'_>) {
        let Some(token) = msg.param(0) else {
            self.numeric(hub, sx, ERR_NOORIGIN, &[], "No origin specified");
            return;
        };
        let s = hub.config().server_name.as_str();
        let l = sx.line(Some(s), "PONG", &[s], Some(token));
        self.send(hub, &l);
    }

    fn cmd_quit<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S, msg: &Message<'_>) -> Flow {
        let reason = format!("Quit: {}", msg.param(0).unwrap_or("Client Quit"));
        self.farewell(hub, sx, &reason);
        self.quit_reason = Some(reason);
        Flow::Close
    }

    fn joined(&self, name: &str) -> Option<usize> {
        let key = fold(name);
        self.rooms.iter().position(|r| r.key() == key.as_ref())
    }

    fn cmd_join<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S, msg: &Message<'_>) {
        let Some(list) = msg.param(0) else {
            self.numeric(
                hub,
                sx,
                ERR_NEEDMOREPARAMS,
                &["JOIN"],
                "Not enough parameters",
            );
            return;
        };
        if list == "0" {
            let rooms = std::mem::take(&mut self.rooms);
            for room in rooms {
                let l = sx.line(Some(&self.prefix), "PART", &[room.name()], None);
                hub.leave(&room, self.id, Some(&l));
            }
            return;
        }
        let Some(nick) = self.nick.clone() else {
            return;
        };
        for name in list.split(',').filter(|n| !n.is_empty()) {
            if !valid_channel(name, hub.config().channel_len) {
                self.numeric(hub, sx, ERR_NOSUCHCHANNEL, &[name], "No such channel");
                continue;
            }
            if self.joined(name).is_some() {
                continue;
            }
            if self.rooms.len() >= hub.config().max_rooms_per_client {
                self.numeric(
                    hub,
                    sx,
                    ERR_TOOMANYCHANNELS,
                    &[name],
                    "You have joined too many channels",
                );
                continue;
            }
            let prefix = &self.prefix;
            let joined = hub.join(name, self.id, &nick, &self.outbox, |canonical| {
                sx.line(Some(prefix), "JOIN", &[canonical], None)
            });
            if let Some(room) = joined {
                self.send_names(hub, sx, &room);
                self.rooms.push(room);
            }
        }
    }

    fn send_names<S: Scratch>(&self, hub: &Hub<O>, sx: &S, room: &Room<O>) {
        for l in hub.names_lines(room, self.target()) {
            self.send(hub, &l);
        }
        self.numeric(
            hub,
            sx,
            RPL_ENDOFNAMES,
            &[room.name()],
            "End of /NAMES list",
        );
    }

    fn cmd_part<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S, msg: &Message<'_>) {
        let Some(list) = msg.param(0) else {
            self.numeric(
                hub,
                sx,
                ERR_NEEDMOREPARAMS,
                &["PART"],
                "Not enough parameters",
            );
            return;
        };
        let reason = msg.param(1);
        for name in list.split(',').filter(|n| !n.is_empty()) {
            match self.joined(name) {
                Some(i) => {
                    let room = self.rooms.swap_remove(i);
                    let l = sx.line(Some(&self.prefix), "PART", &[room.name()], reason);
                    hub.leave(&room, self.id, Some(&l));
                }
                None if hub.find_room(name).is_some() => self.numeric(
                    hub,
                    sx,
                    ERR_NOTONCHANNEL,
                    &[name],
                    "You're not on that channel",
                ),
                None => self.numeric(hub, sx, ERR_NOSUCHCHANNEL, &[name], "No such channel"),
            }
        }
    }

    fn cmd_privmsg<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S, msg: &Message<'_>, kind: &str) {
        let quiet = kind == "NOTICE"; // RFC: never reply to a NOTICE
        let Some(targets) = msg.param(0) else {
            if !quiet {
                self.numeric(
                    hub,
                    sx,
                    ERR_NORECIPIENT,
                    &[],
                    &format!("No recipient given ({kind})"),
                );
            }
            return;
        };
        let Some(text) = msg.param(1).filter(|t| !t.is_empty()) else {
            if !quiet {
                self.numeric(hub, sx, ERR_NOTEXTTOSEND, &[], "No text to send");
            }
            return;
        };
        let max = hub.config().max_targets;
        for (k, target) in targets.split(',').filter(|t| !t.is_empty()).enumerate() {
            if k >= max {
                if !quiet {
                    self.numeric(hub, sx, ERR_TOOMANYTARGETS, &[target], "Too many targets");
                }
                break;
            }
            if target.starts_with('#') {
                if let Some(i) = self.joined(target) {
                    let room = &self.rooms[i];
                    let l = sx.line(Some(&self.prefix), kind, &[room.name()], Some(text));
                    hub.broadcast(room, self.id, &l);
                } else if !quiet {
                    match hub.find_room(target) {
                        Some(_) => self.numeric(
                            hub,
                            sx,
                            ERR_CANNOTSENDTOCHAN,
                            &[target],
                            "Cannot send to channel",
                        ),
                        None => {
                            self.numeric(hub, sx, ERR_NOSUCHCHANNEL, &[target], "No such channel")
                        }
                    }
                }
            } else {
                let l = sx.line(Some(&self.prefix), kind, &[target], Some(text));
                if let Err(NoSuchNick) = hub.send_to_nick(target, &l) {
                    if !quiet {
                        self.numeric(hub, sx, ERR_NOSUCHNICK, &[target], "No such nick/channel");
                    }
                }
            }
        }
    }

    fn cmd_names<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S, msg: &Message<'_>) {
        let Some(list) = msg.param(0) else {
            self.numeric(hub, sx, RPL_ENDOFNAMES, &["*"], "End of /NAMES list");
            return;
        };
        for name in list.split(',').filter(|n| !n.is_empty()) {
            match hub.find_room(name) {
                Some(room) => self.send_names(hub, sx, &room),
                None => self.numeric(hub, sx, RPL_ENDOFNAMES, &[name], "End of /NAMES list"),
            }
        }
    }

    fn cmd_mode<S: Scratch>(&mut self, hub: &Hub<O>, sx: &S, msg: &Message<'_>) {
        let Some(target) = msg.param(0) else {
            self.numeric(
                hub,
                sx,
                ERR_NEEDMOREPARAMS,
                &["MODE"],
                "Not enough parameters",
            );
            return;
        };
        let s = hub.config().server_name.as_str();
        if target.starts_with('#') {
            match hub.find_room(target) {
                Some(room) if msg.params().len() == 1 => {
                    let l = sx.line(
                        Some(s),
                        RPL_CHANNELMODEIS,
                        &[self.target(), room.name(), "+n"],
                        None,
                    );
                    self.send(hub, &l);
                }
                Some(_) => {} // mode changes are not supported; ignored
                None => self.numeric(hub, sx, ERR_NOSUCHCHANNEL, &[target], "No such channel"),
            }
        } else if fold(target) == fold(self.target()) {
            if msg.params().len() == 1 {
                let l = sx.line(Some(s), RPL_UMODEIS, &[self.target(), "+"], None);
                self.send(hub, &l);
            }
        } else {
            self.numeric(
                hub,
                sx,
                ERR_USERSDONTMATCH,
                &[],
                "Cant change mode for other users",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nick_rules() {
        for ok in ["a", "Alice", "[x]", "b-1", "_x_", "c123456"] {
            assert!(valid_nick(ok, 30), "{ok}");
        }
        for bad in ["", "1a", "-a", "a b", "a!b", "a@b", "#a", &"a".repeat(31)] {
            assert!(!valid_nick(bad, 30), "{bad}");
        }
    }

    #[test]
    fn channel_rules() {
        assert!(valid_channel("#rust", 50));
        assert!(valid_channel("#é", 50));
        for bad in ["#", "rust", "#a b", "#a,b", "#a:b", "#a\x07"] {
            assert!(!valid_channel(bad, 50), "{bad:?}");
        }
    }
}
