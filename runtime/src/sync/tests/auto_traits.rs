//! Which public types may cross threads (STYLE.md habit 10). The negative
//! cases are `compile_fail` doctests on the types themselves.

use crate::sync::{
    broadcast, mpsc, oneshot, Condvar, Mutex, MutexGuard, Notify, OnceCell, RwLock,
    RwLockReadGuard, RwLockWriteGuard, Semaphore, SemaphorePermit, WaitGroup,
};
use std::cell::Cell;

fn send<T: Send>() {}
fn sync<T: Sync>() {}

#[test]
fn public_types_are_send_and_sync_where_expected() {
    send::<mpsc::Sender<u8>>();
    sync::<mpsc::Sender<u8>>();
    send::<mpsc::Receiver<u8>>();
    send::<oneshot::Sender<u8>>();
    sync::<oneshot::Sender<u8>>();
    send::<oneshot::Receiver<u8>>();
    sync::<oneshot::Receiver<u8>>();
    send::<Mutex<Cell<u8>>>();
    sync::<Mutex<Cell<u8>>>();
    send::<MutexGuard<'static, Cell<u8>>>();
    sync::<MutexGuard<'static, u8>>();
    send::<Condvar>();
    sync::<Condvar>();
    send::<Notify>();
    sync::<Notify>();
    send::<WaitGroup>();
    sync::<WaitGroup>();
    send::<Semaphore>();
    sync::<Semaphore>();
    send::<SemaphorePermit<'static>>();
    sync::<SemaphorePermit<'static>>();
    send::<broadcast::Sender<u8>>();
    sync::<broadcast::Sender<u8>>();
    send::<broadcast::Receiver<u8>>();
    sync::<broadcast::Receiver<u8>>();
    send::<OnceCell<Cell<u8>>>();
    sync::<OnceCell<u8>>();
    send::<RwLock<Cell<u8>>>();
    sync::<RwLock<u8>>();
    send::<RwLockReadGuard<'static, u8>>();
    sync::<RwLockReadGuard<'static, u8>>();
    send::<RwLockWriteGuard<'static, u8>>();
    sync::<RwLockWriteGuard<'static, u8>>();
}
