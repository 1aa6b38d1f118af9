//! The slab-backed FIFO every primitive queues its waiters in.

use crate::park;
use crate::sync::wait_list::{Status, WaitList, WakeSet};

fn pop_order(list: &mut WaitList) -> Vec<u32> {
    let mut order = Vec::new();
    while let Some(data) = list.front_data() {
        order.push(data);
        assert!(list.notify_front(0).is_some());
    }
    order
}

#[test]
fn push_back_is_fifo_and_push_front_jumps_the_queue() {
    let mut list: WaitList = WaitList::new();
    for i in 1..=3 {
        list.push_back(park::current(), i);
    }
    list.push_front(park::current(), 0);
    assert_eq!(list.len(), 4);
    assert_eq!(pop_order(&mut list), [0, 1, 2, 3]);
    assert!(list.is_empty());
}

#[test]
fn remove_from_the_middle_keeps_the_rest_linked() {
    let mut list: WaitList = WaitList::new();
    let keys: Vec<_> = (0..5).map(|i| list.push_back(park::current(), i)).collect();
    assert_eq!(list.remove(keys[2]), Status::Waiting);
    assert_eq!(list.remove(keys[0]), Status::Waiting);
    assert_eq!(list.remove(keys[4]), Status::Waiting);
    assert_eq!(list.len(), 2);
    assert_eq!(pop_order(&mut list), [1, 3]);
}

#[test]
fn notified_slots_report_their_tag_until_removed_and_are_reused() {
    let mut list: WaitList = WaitList::new();
    let a = list.push_back(park::current(), 10);
    let b = list.push_back(park::current(), 20);
    assert!(list.notify_front(7).is_some());
    assert_eq!(list.status(a), Status::Notified(7));
    assert_eq!(list.status(b), Status::Waiting);
    assert_eq!(list.len(), 1, "a notified waiter is no longer queued");
    assert_eq!(list.remove(a), Status::Notified(7));
    // The freed slot is reused by the next waiter, which queues behind b.
    let c = list.push_back(park::current(), 30);
    assert_eq!(c, a, "freed slots are reused before the slab grows");
    assert_eq!(pop_order(&mut list), [20, 30]);
    assert_eq!(list.remove(b), Status::Notified(0));
    assert_eq!(list.remove(c), Status::Notified(0));
}

#[test]
fn notify_all_collects_every_waiter_beyond_the_inline_four() {
    let mut list: WaitList = WaitList::new();
    let keys: Vec<_> = (0..9).map(|i| list.push_back(park::current(), i)).collect();
    let mut wakes = WakeSet::new();
    list.notify_all(3, &mut wakes);
    assert!(list.is_empty());
    for k in &keys {
        assert_eq!(list.status(*k), Status::Notified(3));
    }
    // All nine unparkers target this thread: waking them leaves one token,
    // so a park returns at once instead of hanging the test.
    wakes.wake_all();
    park::park(park::Reason::Sync);
}

#[test]
fn slab_shrinks_after_a_burst_once_every_slot_is_free() {
    let mut list: WaitList = WaitList::new();
    let keys: Vec<_> = (0..500)
        .map(|i| list.push_back(park::current(), i))
        .collect();
    assert!(list.slot_capacity() >= 500);
    for k in keys {
        list.remove(k);
    }
    assert!(list.is_empty());
    assert!(
        list.slot_capacity() <= 64,
        "an emptied slab keeps {} slots",
        list.slot_capacity()
    );
}

#[test]
fn payloads_travel_with_their_waiter() {
    let mut list: WaitList<Option<String>> = WaitList::new();
    let a = list.push_back_with(park::current(), 0, Some("a".into()));
    let b = list.push_back_with(park::current(), 0, Some("b".into()));
    // The notifier moves the front payload out...
    let (_, taken) = list.notify_front_take(1).unwrap();
    assert_eq!(taken.as_deref(), Some("a"));
    assert_eq!(list.remove_take(a), (Status::Notified(1), None));
    // ...while a waiter that leaves takes its own back.
    assert_eq!(list.remove_take(b), (Status::Waiting, Some("b".into())));
    assert!(list.is_empty());
}
