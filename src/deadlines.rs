//! Deadlines: when each timer of the loop is due, one binary min-heap for all of them.
//!
//! A timer is a slot (a `slab` entry: its deadline, period, owner and task) plus an
//! entry in a heap ordered by deadline, each slot knowing its place in the heap. So:
//!
//! - the nearest deadline (the poll timeout) is the heap's top, O(1);
//! - arming, cancelling and moving a deadline are O(log n), and allocate nothing once
//!   the slab and the heap have reached their working size;
//! - a timer may belong to an *owner* (a client's slab key): each owner's timers are
//!   threaded on a list through their slots, so that all of them go, O(their number),
//!   when the owner goes.
//!
//! A due timer is taken out of the heap to fire ([`Deadlines::pop_due`]) and handed back
//! when its task has run ([`Deadlines::finish`]): a periodic timer is then due again at
//! the next point of its grid after now (ticks missed while the loop was busy are
//! skipped, not fired in a burst), a one-shot timer is gone. A timer cancelled while it
//! fires is gone once it has fired. Timers due at the same instant fire in the order they
//! were created.
//!
//! The structure knows nothing of the loop: the task is whatever the caller stores.

use std::fmt;
use std::time::{Duration, Instant};

/// A timer, as a service keeps it to cancel or move it: unique for the life of the
/// server, so an id whose timer has fired or was cancelled finds nothing, even once its
/// slot serves another timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    key: u32,
    seq: u64,
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seq)
    }
}

/// "None" in the links and positions below (a slab key or heap index never reaches it:
/// the heap holds at most one entry per slot, and slots are bounded by memory long before).
const NIL: u32 = u32::MAX;

/// One timer.
struct Slot<T> {
    seq: u64,
    at: Instant,
    /// `Duration::ZERO` for a one-shot timer.
    period: Duration,
    /// Its index in the heap; `NIL` while it fires.
    pos: u32,
    /// The owner's key, `NIL` for a timer that belongs to nobody.
    owner: u32,
    /// Neighbours in the owner's list.
    prev: u32,
    next: u32,
    /// `None` while it fires (the caller holds the task).
    task: Option<T>,
    /// Cancelled while it fired: freed when handed back.
    cancelled: bool,
    /// Moved while it fired: armed at `at` exactly when handed back, not at the next
    /// point of its old grid.
    moved: bool,
}

/// A heap entry: the ordering key kept inline, so sifting never follows a pointer.
#[derive(Clone, Copy)]
struct HeapEntry {
    at: Instant,
    seq: u64,
    key: u32,
}

impl HeapEntry {
    #[inline]
    fn before(&self, other: &HeapEntry) -> bool {
        (self.at, self.seq) < (other.at, other.seq)
    }
}

/// A timer taken out of the heap because it is due: run its task, then hand it back
/// with [`Deadlines::finish`].
pub(crate) struct Due<T> {
    pub(crate) id: TimerId,
    /// The owner's key, if it has one.
    pub(crate) owner: Option<usize>,
    pub(crate) task: T,
}

/// Every armed timer, by deadline.
pub(crate) struct Deadlines<T> {
    slots: slab::Slab<Slot<T>>,
    heap: Vec<HeapEntry>,
    /// First timer of each owner (indexed by owner key), `NIL` if none.
    owners: Vec<u32>,
    /// The sequence number the next timer gets.
    next_seq: u64,
}

impl<T> Default for Deadlines<T> {
    fn default() -> Self {
        Deadlines {
            slots: slab::Slab::new(),
            heap: Vec::new(),
            owners: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<T> Deadlines<T> {
    /// Arms a timer due at `at`, then every `period` after if `period` is not zero,
    /// belonging to `owner` if given (it goes when [`remove_owner`](Self::remove_owner) is
    /// called for that owner).
    pub(crate) fn insert(
        &mut self,
        at: Instant,
        period: Duration,
        owner: Option<usize>,
        task: T,
    ) -> TimerId {
        let seq = self.next_seq;
        self.next_seq += 1;
        let owner = owner.and_then(|o| u32::try_from(o).ok()).unwrap_or(NIL);
        let entry = self.slots.vacant_entry();
        let key = entry.key() as u32;
        entry.insert(Slot {
            seq,
            at,
            period,
            pos: NIL,
            owner,
            prev: NIL,
            next: NIL,
            task: Some(task),
            cancelled: false,
            moved: false,
        });
        self.link(key);
        self.push(key);
        TimerId { key, seq }
    }

    /// The nearest deadline, if any timer is armed.
    #[inline]
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|e| e.at)
    }

    /// Whether `id` names a timer still armed or firing (and not cancelled).
    pub(crate) fn contains(&self, id: TimerId) -> bool {
        self.slot(id).is_some_and(|s| !s.cancelled)
    }

    /// Takes out the first timer due at or before `now` and created before `seq_limit`
    /// (timers armed while due ones fire wait for the next turn, so a task re-arming
    /// itself at once cannot keep the loop here forever).
    pub(crate) fn pop_due(&mut self, now: Instant, seq_limit: u64) -> Option<Due<T>> {
        let top = *self.heap.first()?;
        if top.at > now || top.seq >= seq_limit {
            return None;
        }
        self.remove_at(0);
        let slot = self.slots.get_mut(top.key as usize)?;
        let task = slot.task.take()?;
        Some(Due {
            id: TimerId {
                key: top.key,
                seq: top.seq,
            },
            owner: (slot.owner != NIL).then_some(slot.owner as usize),
            task,
        })
    }

    /// The sequence number the next timer will get: pass it to [`pop_due`](Self::pop_due)
    /// to fire only timers that exist now.
    pub(crate) fn seq_limit(&self) -> u64 {
        self.next_seq
    }

    /// Hands back a timer that fired, with its task if it is to go on: a periodic one is
    /// armed again at the next point of its grid after `now`; a one-shot or cancelled
    /// one, or one handed back without its task, is gone.
    pub(crate) fn finish(&mut self, id: TimerId, task: Option<T>, now: Instant) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        match task {
            Some(task) if !slot.cancelled && !slot.period.is_zero() => {
                if !std::mem::take(&mut slot.moved) {
                    slot.at = next_tick(slot.at, slot.period, now);
                }
                slot.task = Some(task);
                self.push(id.key);
            }
            _ => drop(self.free(id.key)),
        }
    }

    /// Hands back a timer that fired, armed again at `at` (a one-shot timer that looks
    /// again later), unless it was cancelled meanwhile.
    pub(crate) fn finish_at(&mut self, id: TimerId, task: T, at: Instant) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        if slot.cancelled {
            drop(self.free(id.key));
            return;
        }
        slot.at = at;
        slot.moved = false;
        slot.task = Some(task);
        self.push(id.key);
    }

    /// Moves timer `id`'s deadline to `at` (a periodic timer's grid starts there).
    /// Returns whether it was armed: a one-shot timer that is firing is not (its task
    /// runs once), a periodic one is (its next run is at `at`).
    pub(crate) fn reschedule(&mut self, id: TimerId, at: Instant) -> bool {
        let Some(slot) = self.slot_mut(id) else {
            return false;
        };
        if slot.cancelled {
            return false;
        }
        if slot.pos == NIL {
            // Firing: a one-shot timer's task is spent; a periodic one is armed at `at`
            // when `finish` gets it back.
            if slot.period.is_zero() {
                return false;
            }
            slot.at = at;
            slot.moved = true;
            return true;
        }
        slot.at = at;
        let pos = slot.pos;
        if let Some(entry) = self.heap.get_mut(pos as usize) {
            entry.at = at;
        }
        self.sift(pos as usize);
        true
    }

    /// Cancels timer `id` and returns its task (`None` if it was firing: it is then gone
    /// once handed back, or if there was no such timer).
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<T> {
        let slot = self.slot_mut(id)?;
        if slot.cancelled {
            return None;
        }
        if slot.pos == NIL {
            slot.cancelled = true;
            self.unlink(id.key);
            return None;
        }
        let pos = slot.pos as usize;
        self.remove_at(pos);
        self.free(id.key)
    }

    /// Cancels every timer of `owner` (it is gone).
    pub(crate) fn remove_owner(&mut self, owner: usize) {
        while let Some(&first) = self.owners.get(owner) {
            if first == NIL {
                return;
            }
            let Some(slot) = self.slots.get(first as usize) else {
                return;
            };
            let id = TimerId {
                key: first,
                seq: slot.seq,
            };
            // Dropping a task may run a service's code: the slot is out of every list
            // before it is dropped.
            drop(self.cancel(id));
        }
    }

    /// Armed timers (firing ones included).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len()
    }

    /// The timers of `owner`, most recently armed first.
    #[cfg(test)]
    fn owned(&self, owner: usize) -> Vec<TimerId> {
        let mut ids = Vec::new();
        let mut at = self.owners.get(owner).copied().unwrap_or(NIL);
        while let Some(slot) = self.slots.get(at as usize) {
            ids.push(TimerId {
                key: at,
                seq: slot.seq,
            });
            at = slot.next;
        }
        ids
    }

    fn slot(&self, id: TimerId) -> Option<&Slot<T>> {
        self.slots
            .get(id.key as usize)
            .filter(|slot| slot.seq == id.seq)
    }

    fn slot_mut(&mut self, id: TimerId) -> Option<&mut Slot<T>> {
        self.slots
            .get_mut(id.key as usize)
            .filter(|slot| slot.seq == id.seq)
    }

    /// Removes slot `key` (out of the heap already) from its owner's list and the slab.
    fn free(&mut self, key: u32) -> Option<T> {
        self.unlink(key);
        self.slots
            .try_remove(key as usize)
            .and_then(|slot| slot.task)
    }

    /// Puts slot `key` at the front of its owner's list.
    fn link(&mut self, key: u32) {
        let Some(owner) = self.slots.get(key as usize).map(|s| s.owner as usize) else {
            return;
        };
        if owner == NIL as usize {
            return;
        }
        if self.owners.len() <= owner {
            self.owners.resize(owner + 1, NIL);
        }
        let Some(head) = self.owners.get_mut(owner) else {
            return;
        };
        let next = std::mem::replace(head, key);
        if let Some(slot) = self.slots.get_mut(key as usize) {
            slot.prev = NIL;
            slot.next = next;
        }
        if let Some(slot) = self.slots.get_mut(next as usize) {
            slot.prev = key;
        }
    }

    /// Takes slot `key` out of its owner's list (it then belongs to nobody).
    fn unlink(&mut self, key: u32) {
        let Some(slot) = self.slots.get_mut(key as usize) else {
            return;
        };
        let (owner, prev, next) = (slot.owner, slot.prev, slot.next);
        if owner == NIL {
            return;
        }
        slot.owner = NIL;
        slot.prev = NIL;
        slot.next = NIL;
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                if let Some(head) = self.owners.get_mut(owner as usize) {
                    *head = next;
                }
            }
        }
        if let Some(n) = self.slots.get_mut(next as usize) {
            n.prev = prev;
        }
    }

    /// Adds slot `key` to the heap at its deadline.
    fn push(&mut self, key: u32) {
        let Some(slot) = self.slots.get_mut(key as usize) else {
            return;
        };
        let pos = self.heap.len();
        slot.pos = pos as u32;
        self.heap.push(HeapEntry {
            at: slot.at,
            seq: slot.seq,
            key,
        });
        self.sift_up(pos);
    }

    /// Removes the heap entry at `pos`, keeping the heap ordered; its slot's position
    /// becomes `NIL`.
    fn remove_at(&mut self, pos: usize) {
        let last = self.heap.len() - 1;
        self.heap.swap(pos, last);
        if let Some(removed) = self.heap.pop()
            && let Some(slot) = self.slots.get_mut(removed.key as usize)
        {
            slot.pos = NIL;
        }
        if pos < self.heap.len() {
            self.set_pos(pos);
            self.sift(pos);
        }
    }

    /// Restores the heap order around `pos`, whichever way its entry has to move.
    fn sift(&mut self, pos: usize) {
        let pos = self.sift_up(pos);
        self.sift_down(pos);
    }

    fn sift_up(&mut self, mut pos: usize) -> usize {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            match (self.heap.get(pos), self.heap.get(parent)) {
                (Some(child), Some(up)) if child.before(up) => {}
                _ => break,
            }
            self.heap.swap(pos, parent);
            self.set_pos(pos);
            pos = parent;
        }
        self.set_pos(pos);
        pos
    }

    fn sift_down(&mut self, mut pos: usize) {
        loop {
            let mut least = pos;
            for child in [2 * pos + 1, 2 * pos + 2] {
                if let (Some(c), Some(l)) = (self.heap.get(child), self.heap.get(least))
                    && c.before(l)
                {
                    least = child;
                }
            }
            if least == pos {
                break;
            }
            self.heap.swap(pos, least);
            self.set_pos(pos);
            pos = least;
        }
        self.set_pos(pos);
    }

    /// Tells the slot of the heap entry at `pos` where it is.
    #[inline]
    fn set_pos(&mut self, pos: usize) {
        if let Some(entry) = self.heap.get(pos)
            && let Some(slot) = self.slots.get_mut(entry.key as usize)
        {
            slot.pos = pos as u32;
        }
    }
}

/// `at + after`, or a time far enough away when `after` is absurdly large (an `Instant`
/// cannot hold it): configured timeouts go through this.
pub(crate) fn later(at: Instant, after: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    at.checked_add(after.min(FAR)).unwrap_or(at)
}

/// The first point of the grid `at + k * period` (k ≥ 1) after `now`.
fn next_tick(at: Instant, period: Duration, now: Instant) -> Instant {
    let next = at.checked_add(period).unwrap_or(at);
    if next > now {
        return next;
    }
    let behind = now.saturating_duration_since(at).as_nanos();
    let ticks = behind / period.as_nanos().max(1) + 1;
    let step = period
        .as_nanos()
        .saturating_mul(ticks)
        .min(u128::from(u64::MAX));
    at.checked_add(Duration::from_nanos(step as u64))
        .unwrap_or(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Pops and finishes every timer due at `now`, returning their tasks in firing order.
    fn fire(d: &mut Deadlines<&'static str>, now: Instant) -> Vec<&'static str> {
        let limit = d.seq_limit();
        let mut fired = Vec::new();
        while let Some(due) = d.pop_due(now, limit) {
            fired.push(due.task);
            d.finish(due.id, Some(due.task), now);
        }
        fired
    }

    #[test]
    fn fires_in_deadline_order_then_creation_order() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.insert(t0 + ms(30), Duration::ZERO, None, "c");
        d.insert(t0 + ms(10), Duration::ZERO, None, "a");
        d.insert(t0 + ms(20), Duration::ZERO, None, "b1");
        d.insert(t0 + ms(20), Duration::ZERO, None, "b2");
        assert_eq!(d.next_deadline(), Some(t0 + ms(10)));
        assert!(fire(&mut d, t0 + ms(5)).is_empty());
        assert_eq!(fire(&mut d, t0 + ms(20)), ["a", "b1", "b2"]);
        assert_eq!(fire(&mut d, t0 + ms(40)), ["c"]);
        assert_eq!(d.len(), 0);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn periodic_timers_stay_on_their_grid_and_skip_missed_ticks() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let id = d.insert(t0 + ms(10), ms(10), None, "tick");
        assert_eq!(fire(&mut d, t0 + ms(12)), ["tick"]);
        assert_eq!(
            d.next_deadline(),
            Some(t0 + ms(20)),
            "on the grid, not now + period"
        );
        // The loop was busy for 55 ms: one firing, then the next point after now.
        assert_eq!(fire(&mut d, t0 + ms(75)), ["tick"]);
        assert_eq!(d.next_deadline(), Some(t0 + ms(80)));
        assert!(d.contains(id));
        assert_eq!(d.cancel(id), Some("tick"));
        assert!(!d.contains(id));
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_stale_id_finds_nothing_even_in_a_reused_slot() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let old = d.insert(t0, Duration::ZERO, None, "old");
        assert_eq!(d.cancel(old), Some("old"));
        let new = d.insert(t0 + ms(5), Duration::ZERO, None, "new");
        assert_eq!(old.key, new.key, "the slot is reused");
        assert_eq!(d.cancel(old), None);
        assert!(!d.reschedule(old, t0));
        assert!(d.contains(new));
    }

    #[test]
    fn a_timer_rescheduled_while_it_fires() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        // A periodic timer moved from its own run: next at the new time exactly, then
        // every period from there (not at the next point of its old grid).
        let tick = d.insert(t0 + ms(1000), ms(1000), None, "tick");
        let due = d.pop_due(t0 + ms(1000), d.seq_limit()).unwrap();
        assert!(d.reschedule(tick, t0 + ms(1050)));
        d.finish(due.id, Some(due.task), t0 + ms(1000));
        assert_eq!(d.next_deadline(), Some(t0 + ms(1050)));
        assert_eq!(fire(&mut d, t0 + ms(1050)), ["tick"]);
        assert_eq!(d.next_deadline(), Some(t0 + ms(2050)));
        // A one-shot timer's task runs once: moving it from its own run arms nothing.
        let once = d.insert(t0 + ms(3000), Duration::ZERO, None, "once");
        let limit = d.seq_limit();
        let due = loop {
            let due = d.pop_due(t0 + ms(3000), limit).unwrap();
            if due.id == once {
                break due;
            }
            d.finish(due.id, Some(due.task), t0 + ms(3000));
        };
        assert!(!d.reschedule(once, t0 + ms(3050)));
        d.finish(due.id, None, t0 + ms(3000));
        assert!(!d.contains(once));
    }

    #[test]
    fn rescheduling_moves_a_deadline_both_ways() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let ids: Vec<TimerId> = (0..50)
            .map(|i| d.insert(t0 + ms(10 + i), Duration::ZERO, None, "x"))
            .collect();
        let late = d.insert(t0 + ms(100), Duration::ZERO, None, "late");
        assert!(d.reschedule(late, t0 + ms(1)));
        assert_eq!(d.next_deadline(), Some(t0 + ms(1)));
        assert!(d.reschedule(late, t0 + ms(500)));
        assert_eq!(d.next_deadline(), Some(t0 + ms(10)));
        for id in &ids {
            assert!(d.reschedule(*id, t0 + ms(1000)));
        }
        assert_eq!(fire(&mut d, t0 + ms(600)), ["late"]);
        assert_eq!(fire(&mut d, t0 + ms(1000)).len(), 50);
    }

    #[test]
    fn timers_armed_while_firing_wait_for_the_next_turn() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.insert(t0, Duration::ZERO, None, "first");
        let limit = d.seq_limit();
        let due = d.pop_due(t0, limit).unwrap();
        // Its task arms another timer due at once.
        d.insert(t0, Duration::ZERO, None, "again");
        d.finish(due.id, Some(due.task), t0);
        assert!(d.pop_due(t0, limit).is_none());
        assert_eq!(fire(&mut d, t0), ["again"]);
    }

    #[test]
    fn a_timer_cancelled_while_firing_is_gone_once_handed_back() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let id = d.insert(t0, ms(10), Some(3), "periodic");
        let due = d.pop_due(t0, d.seq_limit()).unwrap();
        assert_eq!(due.owner, Some(3));
        assert_eq!(d.cancel(id), None, "its task is out, firing");
        assert!(!d.contains(id));
        assert!(d.owned(3).is_empty());
        d.finish(due.id, Some(due.task), t0);
        assert_eq!(d.len(), 0);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn an_owners_timers_all_go_with_it_and_no_one_elses() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let a1 = d.insert(t0 + ms(1), Duration::ZERO, Some(0), "a1");
        let b = d.insert(t0 + ms(2), ms(5), Some(1), "b");
        let a2 = d.insert(t0 + ms(3), ms(5), Some(0), "a2");
        d.insert(t0 + ms(4), Duration::ZERO, None, "server");
        let a3 = d.insert(t0 + ms(5), Duration::ZERO, Some(0), "a3");
        assert_eq!(d.owned(0), [a3, a2, a1]);
        // One in the middle of the list goes on its own.
        assert_eq!(d.cancel(a2), Some("a2"));
        assert_eq!(d.owned(0), [a3, a1]);
        d.remove_owner(0);
        assert!(d.owned(0).is_empty());
        assert!(!d.contains(a1) && !d.contains(a3));
        assert_eq!(d.owned(1), [b]);
        assert_eq!(fire(&mut d, t0 + ms(10)), ["b", "server"]);
        d.remove_owner(1);
        assert_eq!(d.len(), 0);
        // An owner key never seen before has nothing to remove.
        d.remove_owner(1000);
    }

    #[test]
    fn a_one_shot_timer_leaves_its_owners_list_once_fired() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.insert(t0, Duration::ZERO, Some(2), "once");
        assert_eq!(fire(&mut d, t0), ["once"]);
        assert!(d.owned(2).is_empty());
        assert_eq!(d.len(), 0);
    }

    /// A model check: random inserts, cancels, reschedules and firings agree with a
    /// sorted list of (deadline, seq).
    #[test]
    fn agrees_with_a_sorted_list() {
        use proptest::prelude::*;
        proptest!(|(ops in proptest::collection::vec((0u8..4, 0u64..200, 0usize..64), 1..300))| {
            let t0 = Instant::now();
            let mut d = Deadlines::default();
            let mut model: Vec<(Instant, u64, TimerId)> = Vec::new();
            let mut now = t0;
            for (op, n, pick) in ops {
                match op {
                    0 | 1 => {
                        let at = now + ms(n);
                        let id = d.insert(at, Duration::ZERO, None, "t");
                        model.push((at, id.seq, id));
                    }
                    2 if !model.is_empty() => {
                        let (_, _, id) = model.remove(pick % model.len());
                        prop_assert_eq!(d.cancel(id), Some("t"));
                    }
                    2 => {}
                    _ => {
                        if !model.is_empty() {
                            let i = pick % model.len();
                            let at = now + ms(n);
                            prop_assert!(d.reschedule(model[i].2, at));
                            model[i].0 = at;
                        }
                        now += ms(n / 4);
                        let limit = d.seq_limit();
                        model.sort_by_key(|m| (m.0, m.1));
                        while let Some(due) = d.pop_due(now, limit) {
                            let (_, _, id) = model.remove(0);
                            prop_assert_eq!(due.id, id);
                            d.finish(due.id, Some(due.task), now);
                        }
                        prop_assert!(model.first().is_none_or(|m| m.0 > now));
                    }
                }
                prop_assert_eq!(d.len(), model.len());
                model.sort_by_key(|m| (m.0, m.1));
                prop_assert_eq!(d.next_deadline(), model.first().map(|m| m.0));
            }
        });
    }
}
