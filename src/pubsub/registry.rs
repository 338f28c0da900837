//! The topic registry: who is subscribed to what, both ways.
//!
//! Three namespaces, each its own [`Kind`]: channels, patterns and shard channels (a
//! shard channel `news` and a channel `news` are different topics, as in Redis). A topic
//! exists while it has a subscriber: it keeps its name once (shared with the per-client
//! side), its compiled [`Glob`] if it is a pattern, and its subscribers' table keys in a
//! vector that a publish walks. Each client's side maps its topics to its place in their
//! subscriber vectors, so unsubscribing costs O(1) (swap-remove, then fix the place of the
//! subscriber that moved) and a client that goes is removed from everything it held.
//!
//! Clients are named by their slab key: the loop removes a client here before its slot
//! can be reused ([`Registry::remove_client`] in `close_now`).

use std::collections::HashMap;
use std::sync::Arc;

use super::{Kind, Subscriptions};
use crate::client::frames::Arena;
use crate::pubsub::Glob;

/// A topic's name, shared between the registry's index and its subscribers' side.
pub(crate) type Name = Arc<[u8]>;

/// One topic and who listens to it.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: Name,
    /// The compiled pattern (patterns only): compiled once, matched at every publish.
    pub(crate) glob: Option<Glob>,
    /// Subscribers' table keys, in no particular order.
    pub(crate) subscribers: Vec<usize>,
    /// The batch its messages are appended to, per encoding form (form, batch).
    pub(crate) open: Vec<(usize, usize)>,
}

/// One namespace: its topics by name.
#[derive(Debug, Default)]
struct Space {
    by_name: HashMap<Name, usize>,
    topics: slab::Slab<Topic>,
}

/// What the registry keeps for one subscribed client.
#[derive(Debug, Default)]
pub(crate) struct ClientSubs {
    /// Per namespace: topic slot → this client's index in the topic's subscribers.
    held: [HashMap<usize, usize>; 3],
}

impl ClientSubs {
    fn held(&self, kind: Kind) -> &HashMap<usize, usize> {
        kind.pick(&self.held)
    }

    fn held_mut(&mut self, kind: Kind) -> &mut HashMap<usize, usize> {
        kind.pick_mut(&mut self.held)
    }

    fn is_empty(&self) -> bool {
        self.held.iter().all(HashMap::is_empty)
    }
}

/// Every subscription of every client.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    spaces: [Space; 3],
    /// By client table key; `None` for clients subscribed to nothing.
    clients: Vec<Option<Box<ClientSubs>>>,
    /// How many of `clients` are `Some`: while none is, no request needs to look further.
    subscribed: usize,
}

impl Registry {
    fn space(&self, kind: Kind) -> &Space {
        kind.pick(&self.spaces)
    }

    /// Subscribes client `key` to `name`; returns `false` if it already was.
    pub(crate) fn subscribe(&mut self, key: usize, kind: Kind, name: &[u8]) -> bool {
        if self.clients.len() <= key {
            self.clients.resize_with(key + 1, || None);
        }
        let space = kind.pick_mut(&mut self.spaces);
        let slot = match space.by_name.get(name) {
            Some(&slot) => slot,
            None => {
                let name: Name = Arc::from(name);
                let glob = (kind == Kind::Pattern).then(|| Glob::new(&name));
                let slot = space.topics.insert(Topic {
                    name: Arc::clone(&name),
                    glob,
                    subscribers: Vec::new(),
                    open: Vec::new(),
                });
                space.by_name.insert(name, slot);
                slot
            }
        };
        let Some(entry) = self.clients.get_mut(key) else {
            return false;
        };
        if entry.is_none() {
            self.subscribed += 1;
        }
        let subs = entry.get_or_insert_with(Box::default);
        let held = subs.held_mut(kind);
        if held.contains_key(&slot) {
            return false;
        }
        let Some(topic) = space.topics.get_mut(slot) else {
            return false;
        };
        held.insert(slot, topic.subscribers.len());
        topic.subscribers.push(key);
        true
    }

    /// Unsubscribes client `key` from `name`; returns `false` if it was not subscribed.
    /// A topic left without subscribers goes, its open batches closed in `arena`.
    pub(crate) fn unsubscribe(
        &mut self,
        key: usize,
        kind: Kind,
        name: &[u8],
        arena: &mut Arena,
    ) -> bool {
        let Some(&slot) = self.space(kind).by_name.get(name) else {
            return false;
        };
        self.unsubscribe_slot(key, kind, slot, arena)
    }

    fn unsubscribe_slot(&mut self, key: usize, kind: Kind, slot: usize, arena: &mut Arena) -> bool {
        let Some(Some(subs)) = self.clients.get_mut(key) else {
            return false;
        };
        let Some(index) = subs.held_mut(kind).remove(&slot) else {
            return false;
        };
        if subs.is_empty()
            && let Some(entry) = self.clients.get_mut(key)
        {
            *entry = None;
            self.subscribed -= 1;
        }
        let space = kind.pick_mut(&mut self.spaces);
        let Some(topic) = space.topics.get_mut(slot) else {
            return true;
        };
        topic.subscribers.swap_remove(index);
        if let Some(&moved) = topic.subscribers.get(index) {
            // The last subscriber took the freed place: tell its side.
            if let Some(Some(other)) = self.clients.get_mut(moved)
                && let Some(place) = other.held_mut(kind).get_mut(&slot)
            {
                *place = index;
            }
        }
        if topic.subscribers.is_empty() {
            let topic = space.topics.remove(slot);
            space.by_name.remove(&topic.name);
            for (_, batch) in topic.open {
                arena.close(batch);
            }
        }
        true
    }

    /// Unsubscribes client `key` from every topic of `kind`; returns their names, in the
    /// order they were dropped.
    pub(crate) fn unsubscribe_all(
        &mut self,
        key: usize,
        kind: Kind,
        arena: &mut Arena,
    ) -> Vec<Name> {
        let slots: Vec<usize> = match self.clients.get(key) {
            Some(Some(subs)) => subs.held(kind).keys().copied().collect(),
            _ => return Vec::new(),
        };
        let mut names = Vec::with_capacity(slots.len());
        for slot in slots {
            if let Some(topic) = self.space(kind).topics.get(slot) {
                names.push(Arc::clone(&topic.name));
            }
            self.unsubscribe_slot(key, kind, slot, arena);
        }
        names
    }

    /// Removes client `key` from everything it is subscribed to (it is gone).
    pub(crate) fn remove_client(&mut self, key: usize, arena: &mut Arena) {
        if !matches!(self.clients.get(key), Some(Some(_))) {
            return;
        }
        for kind in Kind::ALL {
            self.unsubscribe_all(key, kind, arena);
        }
        if let Some(entry) = self.clients.get_mut(key)
            && entry.take().is_some()
        {
            self.subscribed -= 1;
        }
    }

    /// Whether client `key` is subscribed to anything (cheaper than counting).
    #[inline]
    pub(crate) fn is_subscribed(&self, key: usize) -> bool {
        self.subscribed != 0 && matches!(self.clients.get(key), Some(Some(_)))
    }

    /// How many topics of each kind client `key` is subscribed to.
    pub(crate) fn counts(&self, key: usize) -> Subscriptions {
        match self.clients.get(key) {
            Some(Some(subs)) => Subscriptions {
                channels: subs.held(Kind::Channel).len(),
                patterns: subs.held(Kind::Pattern).len(),
                shard_channels: subs.held(Kind::ShardChannel).len(),
            },
            _ => Subscriptions::default(),
        }
    }

    /// The topic `name` of `kind`, if anyone is subscribed to it.
    pub(crate) fn topic(&self, kind: Kind, name: &[u8]) -> Option<&Topic> {
        let space = self.space(kind);
        space.topics.get(*space.by_name.get(name)?)
    }

    /// The topic `name` of `kind`, to publish on.
    pub(crate) fn topic_mut(&mut self, kind: Kind, name: &[u8]) -> Option<&mut Topic> {
        let space = kind.pick_mut(&mut self.spaces);
        space.topics.get_mut(*space.by_name.get(name)?)
    }

    /// Every topic of `kind`.
    pub(crate) fn topics(&self, kind: Kind) -> impl Iterator<Item = &Topic> {
        self.space(kind).topics.iter().map(|(_, topic)| topic)
    }

    /// Every topic of `kind`, to publish on.
    pub(crate) fn topics_mut(&mut self, kind: Kind) -> impl Iterator<Item = &mut Topic> {
        kind.pick_mut(&mut self.spaces)
            .topics
            .iter_mut()
            .map(|(_, topic)| topic)
    }

    /// How many topics of `kind` have subscribers.
    pub(crate) fn len(&self, kind: Kind) -> usize {
        self.space(kind).topics.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribers(r: &Registry, kind: Kind, name: &[u8]) -> Vec<usize> {
        let mut keys = r
            .topic(kind, name)
            .map(|t| t.subscribers.clone())
            .unwrap_or_default();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn subscribe_twice_counts_once_and_namespaces_are_apart() {
        let mut r = Registry::default();
        assert!(r.subscribe(3, Kind::Channel, b"news"));
        assert!(!r.subscribe(3, Kind::Channel, b"news"));
        assert!(r.subscribe(3, Kind::ShardChannel, b"news"));
        assert!(r.subscribe(3, Kind::Pattern, b"n*"));
        assert_eq!(
            r.counts(3),
            Subscriptions {
                channels: 1,
                patterns: 1,
                shard_channels: 1
            }
        );
        assert_eq!(r.len(Kind::Channel), 1);
        assert!(
            r.topic(Kind::Pattern, b"n*")
                .is_some_and(|t| t.glob.is_some())
        );
        assert!(
            r.topic(Kind::Channel, b"news")
                .is_some_and(|t| t.glob.is_none())
        );
    }

    #[test]
    fn unsubscribing_keeps_the_others_places_right() {
        let mut r = Registry::default();
        let mut arena = Arena::default();
        for key in 0..5 {
            assert!(r.subscribe(key, Kind::Channel, b"a"));
            assert!(r.subscribe(key, Kind::Channel, b"b"));
        }
        assert!(r.unsubscribe(1, Kind::Channel, b"a", &mut arena));
        assert!(!r.unsubscribe(1, Kind::Channel, b"a", &mut arena));
        assert!(r.unsubscribe(4, Kind::Channel, b"a", &mut arena));
        assert!(r.unsubscribe(0, Kind::Channel, b"a", &mut arena));
        assert_eq!(subscribers(&r, Kind::Channel, b"a"), vec![2, 3]);
        // The places recorded for the moved subscribers are right: they unsubscribe too.
        assert!(r.unsubscribe(3, Kind::Channel, b"a", &mut arena));
        assert!(r.unsubscribe(2, Kind::Channel, b"a", &mut arena));
        assert!(
            r.topic(Kind::Channel, b"a").is_none(),
            "an empty topic is gone"
        );
        assert_eq!(subscribers(&r, Kind::Channel, b"b"), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_client_that_goes_leaves_nothing_behind() {
        let mut r = Registry::default();
        let mut arena = Arena::default();
        r.subscribe(7, Kind::Channel, b"a");
        r.subscribe(7, Kind::Pattern, b"*");
        r.subscribe(7, Kind::ShardChannel, b"s");
        r.subscribe(8, Kind::Channel, b"a");
        r.remove_client(7, &mut arena);
        assert_eq!(r.counts(7), Subscriptions::default());
        assert_eq!(r.len(Kind::Pattern) + r.len(Kind::ShardChannel), 0);
        assert_eq!(subscribers(&r, Kind::Channel, b"a"), vec![8]);
        assert!(matches!(r.clients.get(7), Some(None)));
        assert_eq!(r.subscribed, 1);
        assert!(!r.is_subscribed(7) && r.is_subscribed(8));
        r.remove_client(8, &mut arena);
        assert_eq!(r.subscribed, 0);
        assert!(
            r.spaces
                .iter()
                .all(|s| s.by_name.is_empty() && s.topics.is_empty())
        );
        assert!(r.clients.iter().all(Option::is_none));
    }

    #[test]
    fn unsubscribe_all_returns_what_was_dropped() {
        let mut r = Registry::default();
        let mut arena = Arena::default();
        assert!(r.unsubscribe_all(1, Kind::Channel, &mut arena).is_empty());
        r.subscribe(1, Kind::Channel, b"x");
        r.subscribe(1, Kind::Channel, b"y");
        r.subscribe(1, Kind::Pattern, b"z");
        let mut names: Vec<Vec<u8>> = r
            .unsubscribe_all(1, Kind::Channel, &mut arena)
            .iter()
            .map(|n| n.to_vec())
            .collect();
        names.sort();
        assert_eq!(names, vec![b"x".to_vec(), b"y".to_vec()]);
        assert_eq!(r.counts(1).patterns, 1);
    }
}
