//! The chat server's shared state: the nick registry and the rooms.
//!
//! I/O-free and runtime-agnostic: every effect is a non-blocking
//! [`Outbox::try_push`]. Sessions ([`super::session`]) call into the hub from
//! whatever task or coroutine serves their connection.
//!
//! # Locks
//!
//! ```text
//! nicks: [Mutex<HashMap<folded nick, NickEntry>>; 64]      sharded by hash
//! rooms: [RwLock<HashMap<folded name, Arc<Room>>>; 64]     sharded by hash
//!          Room { members: RwLock<Members { dead, map: id -> Member }> }
//! ```
//!
//! Rules, which keep every critical section short and deadlock-free:
//! 1. Nothing blocks, awaits or does I/O while holding a lock; the only work
//!    under a lock is map updates, formatting NAMES lines and `try_push`
//!    (bounded by the room's size).
//! 2. Lock order is room shard, then room members. No code takes a shard
//!    lock while holding a members lock. Nick shard locks are never held
//!    together with any other lock.
//! 3. A room is removed from its shard only by `Hub::remove_if_empty`, which
//!    holds the shard's write lock and the room's write lock, and marks the
//!    room `dead`. A joiner that finds its room dead (it lost a race with the
//!    last member leaving) looks the name up again.
//! 4. A fan-out never removes anyone: when a member's queue is full the hub
//!    calls [`Outbox::close`]; the member's own session then leaves the rooms
//!    from its task, outside any fan-out.
//!
//! Lock poisoning is ignored (`into_inner`): every update leaves the maps
//! consistent before any call that could panic.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::outbox::{Line, Outbox, PushError};
use super::proto::{LineBuf, MAX_LINE};
use super::reply;

const SHARDS: usize = 64;

/// Identifies one connection for the life of the hub.
pub type ClientId = u64;

/// Hub settings: names and per-client limits.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The server's name, used as the prefix of its replies.
    pub server_name: String,
    /// The network name shown in the welcome.
    pub network: String,
    /// Most rooms one client may be in (405 beyond).
    pub max_rooms_per_client: usize,
    /// Most targets in one PRIVMSG (407 beyond).
    pub max_targets: usize,
    /// Longest nickname.
    pub nick_len: usize,
    /// Longest room name, `#` included.
    pub channel_len: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            server_name: "pinstack.chat".into(),
            network: "pinstack".into(),
            max_rooms_per_client: 20,
            max_targets: 4,
            nick_len: 30,
            channel_len: 50,
        }
    }
}

struct NickEntry<O> {
    id: ClientId,
    outbox: O,
}

struct Member<O> {
    nick: Arc<str>,
    outbox: O,
}

struct Members<O> {
    dead: bool,
    map: HashMap<ClientId, Member<O>>,
}

/// A chat room. Sessions hold `Arc<Room>` for the rooms they are in.
pub(crate) struct Room<O> {
    name: Box<str>,
    key: Box<str>,
    members: RwLock<Members<O>>,
}

impl<O> Room<O> {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    fn read(&self) -> RwLockReadGuard<'_, Members<O>> {
        self.members.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Members<O>> {
        self.members.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Nickname already taken (433).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NickInUse;

/// No client with that nickname (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoSuchNick;

/// One shard of the nick registry: folded nick -> holder.
type NickShard<O> = Mutex<HashMap<Box<str>, NickEntry<O>>>;
/// One shard of the room table: folded name -> room.
type RoomShard<O> = RwLock<HashMap<Box<str>, Arc<Room<O>>>>;

/// The shared state of one chat server (see the module docs).
pub struct Hub<O: Outbox> {
    cfg: HubConfig,
    nicks: Box<[NickShard<O>]>,
    rooms: Box<[RoomShard<O>]>,
    next_id: AtomicU64,
    registered: AtomicUsize,
    room_count: AtomicUsize,
    sendq_farewell: Line,
}

impl<O: Outbox> std::fmt::Debug for Hub<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("server_name", &self.cfg.server_name)
            .field("clients", &self.clients())
            .field("rooms", &self.rooms())
            .finish()
    }
}

/// ASCII case folding (CASEMAPPING=ascii), borrowing when already folded.
pub(crate) fn fold(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

fn shard_of(key: &str) -> usize {
    // FNV-1a: cheap and good enough to spread names over 64 shards.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}

impl<O: Outbox> Hub<O> {
    /// An empty hub.
    pub fn new(cfg: HubConfig) -> Self {
        Self {
            cfg,
            nicks: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            rooms: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            next_id: AtomicU64::new(1),
            registered: AtomicUsize::new(0),
            room_count: AtomicUsize::new(0),
            sendq_farewell: Line::from(&b"ERROR :SendQ exceeded\r\n"[..]),
        }
    }

    /// The hub's settings.
    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    /// Nicknames currently held.
    pub fn clients(&self) -> usize {
        self.registered.load(Ordering::Relaxed)
    }

    /// Rooms with at least one member.
    pub fn rooms(&self) -> usize {
        self.room_count.load(Ordering::Relaxed)
    }

    /// Members of room `name` right now (0 if it does not exist).
    pub fn room_size(&self, name: &str) -> usize {
        self.find_room(name).map_or(0, |r| r.read().map.len())
    }

    pub(crate) fn next_id(&self) -> ClientId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Pushes `line` to one client; a full queue closes that client with
    /// `ERROR :SendQ exceeded` (rule 4).
    pub(crate) fn deliver(&self, outbox: &O, line: &Line) {
        if let Err(PushError::Full) = outbox.try_push(line.clone()) {
            outbox.close(self.sendq_farewell.clone());
        }
    }

    fn nick_shard(&self, key: &str) -> MutexGuard<'_, HashMap<Box<str>, NickEntry<O>>> {
        self.nicks[shard_of(key)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `nick` for client `id` (a no-op if `id` already holds it).
    pub(crate) fn claim_nick(&self, nick: &str, id: ClientId, outbox: &O) -> Result<(), NickInUse> {
        let key = fold(nick);
        let mut shard = self.nick_shard(&key);
        match shard.get(key.as_ref()) {
            Some(e) if e.id == id => Ok(()),
            Some(_) => Err(NickInUse),
            None => {
                shard.insert(
                    key.into_owned().into_boxed_str(),
                    NickEntry {
                        id,
                        outbox: outbox.clone(),
                    },
                );
                self.registered.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Gives `nick` back if client `id` holds it.
    pub(crate) fn release_nick(&self, nick: &str, id: ClientId) {
        let key = fold(nick);
        let mut shard = self.nick_shard(&key);
        if shard.get(key.as_ref()).is_some_and(|e| e.id == id) {
            shard.remove(key.as_ref());
            self.registered.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Pushes `line` to the client holding `nick`.
    pub(crate) fn send_to_nick(&self, nick: &str, line: &Line) -> Result<(), NoSuchNick> {
        let key = fold(nick);
        let shard = self.nick_shard(&key);
        let e = shard.get(key.as_ref()).ok_or(NoSuchNick)?;
        self.deliver(&e.outbox, line);
        Ok(())
    }

    /// Whether `nick` is held by someone.
    pub fn nick_in_use(&self, nick: &str) -> bool {
        let key = fold(nick);
        self.nick_shard(&key).contains_key(key.as_ref())
    }

    pub(crate) fn find_room(&self, name: &str) -> Option<Arc<Room<O>>> {
        let key = fold(name);
        let shard = self.rooms[shard_of(&key)]
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(key.as_ref()).cloned()
    }

    fn find_or_create_room(&self, name: &str) -> Arc<Room<O>> {
        if let Some(r) = self.find_room(name) {
            return r;
        }
        let key = fold(name).into_owned().into_boxed_str();
        let mut shard = self.rooms[shard_of(&key)]
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .entry(key.clone())
            .or_insert_with(|| {
                self.room_count.fetch_add(1, Ordering::Relaxed);
                Arc::new(Room {
                    name: name.into(),
                    key,
                    members: RwLock::new(Members {
                        dead: false,
                        map: HashMap::new(),
                    }),
                })
            })
            .clone()
    }

    /// Adds client `id` to room `name` (created if needed) and pushes the
    /// line made by `join_line(canonical_name)` to every member, the joiner
    /// included. Returns the room, or `None` if `id` was already a member.
    pub(crate) fn join(
        &self,
        name: &str,
        id: ClientId,
        nick: &Arc<str>,
        outbox: &O,
        join_line: impl Fn(&str) -> Line,
    ) -> Option<Arc<Room<O>>> {
        loop {
            let room = self.find_or_create_room(name);
            let mut m = room.write();
            if m.dead {
                continue; // rule 3: lost a race with the last leaver
            }
            if m.map.contains_key(&id) {
                return None;
            }
            m.map.insert(
                id,
                Member {
                    nick: nick.clone(),
                    outbox: outbox.clone(),
                },
            );
            let line = join_line(&room.name);
            for member in m.map.values() {
                self.deliver(&member.outbox, &line);
            }
            drop(m);
            return Some(room);
        }
    }

    /// Removes `id` from `room`. `line` (PART) goes to every member first,
    /// the leaver included.
    pub(crate) fn leave(&self, room: &Arc<Room<O>>, id: ClientId, line: Option<&Line>) {
        let mut m = room.write();
        if let Some(line) = line {
            for member in m.map.values() {
                self.deliver(&member.outbox, line);
            }
        }
        m.map.remove(&id);
        let empty = m.map.is_empty();
        drop(m);
        if empty {
            self.remove_if_empty(room);
        }
    }

    /// Removes `id` from all `rooms`, sending `line` (QUIT or NICK) once to
    /// every other member of any of them.
    pub(crate) fn leave_all(&self, rooms: &[Arc<Room<O>>], id: ClientId, line: Option<&Line>) {
        let mut told: HashSet<ClientId> = HashSet::new();
        for room in rooms {
            let mut m = room.write();
            m.map.remove(&id);
            if let Some(line) = line {
                for (mid, member) in &m.map {
                    if rooms.len() == 1 || told.insert(*mid) {
                        self.deliver(&member.outbox, line);
                    }
                }
            }
            let empty = m.map.is_empty();
            drop(m);
            if empty {
                self.remove_if_empty(room);
            }
        }
    }

    /// Renames member `id` in `rooms` and sends `line` (NICK) once to every
    /// other member of any of them.
    pub(crate) fn rename(
        &self,
        rooms: &[Arc<Room<O>>],
        id: ClientId,
        nick: &Arc<str>,
        line: &Line,
    ) {
        let mut told: HashSet<ClientId> = HashSet::new();
        told.insert(id);
        for room in rooms {
            let mut m = room.write();
            if let Some(me) = m.map.get_mut(&id) {
                me.nick = nick.clone();
            }
            for (mid, member) in &m.map {
                if told.insert(*mid) {
                    self.deliver(&member.outbox, line);
                }
            }
        }
    }

    fn remove_if_empty(&self, room: &Arc<Room<O>>) {
        let mut shard = self.rooms[shard_of(&room.key)]
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut m = room.write();
        if m.map.is_empty() && !m.dead {
            m.dead = true;
            if shard.get(&room.key).is_some_and(|r| Arc::ptr_eq(r, room)) {
                shard.remove(&room.key);
                self.room_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Pushes `line` to every member of `room` except `except`. Returns how
    /// many members it went to.
    pub(crate) fn broadcast(&self, room: &Room<O>, except: ClientId, line: &Line) -> usize {
        let m = room.read();
        let mut n = 0;
        for (id, member) in &m.map {
            if *id != except {
                self.deliver(&member.outbox, line);
                n += 1;
            }
        }
        n
    }

    /// The 353 RPL_NAMREPLY lines for `room`, addressed to `to`, each at most
    /// [`MAX_LINE`] bytes.
    pub(crate) fn names_lines(&self, room: &Room<O>, to: &str) -> Vec<Line> {
        let server = self.cfg.server_name.as_str();
        let mut out = Vec::new();
        let mut buf = LineBuf::new();
        // ":server 353 to = #room :" plus CRLF.
        let overhead = server.len() + to.len() + room.name.len() + 16;
        let budget = MAX_LINE.saturating_sub(overhead).max(64);
        let mut list = String::with_capacity(budget);
        let m = room.read();
        for member in m.map.values() {
            if !list.is_empty() && list.len() + 1 + member.nick.len() > budget {
                let l = buf.format(
                    Some(server),
                    reply::RPL_NAMREPLY,
                    &[to, "=", &room.name],
                    Some(&list),
                );
                out.push(Line::from(l));
                list.clear();
            }
            if !list.is_empty() {
                list.push(' ');
            }
            list.push_str(&member.nick);
        }
        drop(m);
        if !list.is_empty() {
            let l = buf.format(
                Some(server),
                reply::RPL_NAMREPLY,
                &[to, "=", &room.name],
                Some(&list),
            );
            out.push(Line::from(l));
        }
        out
    }
}
