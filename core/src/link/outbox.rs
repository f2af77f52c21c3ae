//! The sender side of a sequenced link: assigns sequence numbers, keeps messages until acknowledged, limits the in-flight window, coalesces by key, and refuses (never drops) when full.
//!
//! ```text
//!   push ──► pending (unsent; a newer message with the same key replaces
//!            │          the older one in place: "newest wins")
//!            ▼ next_to_send (only while in_flight < window)
//!          in_flight (seq assigned, kept until acked, resent on resume)
//!            ▼ ack(n) drops every seq ≤ n
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

/// Errors of the sender side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    /// The buffer is at capacity: the caller must slow down (backpressure),
    /// nothing was dropped.
    #[error("outbox is full ({capacity} messages buffered); apply backpressure")]
    Full { capacity: usize },
    /// The peer acknowledged a sequence number that was never sent: a
    /// protocol violation; the link must be reset.
    #[error("peer acknowledged seq {acked} but only {highest_sent} was sent")]
    AckBeyondSent { acked: u64, highest_sent: u64 },
    /// The peer resumes from before what it had acknowledged (it lost messages it had stored): numbering on
    /// from there would leave a gap; the link must start over (a new epoch).
    #[error("peer resumes from seq {resume} but had acknowledged {acked}")]
    ResumeBeforeAcked { resume: u64, acked: u64 },
}

/// Sender-side buffer for one direction of a link.
#[derive(Debug)]
pub struct Outbox<K, M> {
    window: usize,
    capacity: usize,
    /// Highest seq acknowledged by the peer.
    acked: u64,
    /// Next seq to assign.
    next_seq: u64,
    /// Unsent messages by insertion slot, and the slot of each coalescing key.
    pending: BTreeMap<u64, (Option<K>, M)>,
    pending_by_key: HashMap<K, u64>,
    next_slot: u64,
    /// Sent, unacknowledged messages in seq order, with their coalescing keys.
    in_flight: VecDeque<(u64, Option<K>, M)>,
    /// Messages replaced by a newer one with the same key (observability).
    coalesced: u64,
}

impl<K: Eq + Hash + Clone, M: Clone> Outbox<K, M> {
    /// `first_seq` is the first sequence number to assign (1 for a fresh
    /// epoch); `window` bounds unacknowledged messages in flight and
    /// `capacity` bounds everything buffered.
    pub fn new(first_seq: u64, window: usize, capacity: usize) -> Self {
        let first_seq = first_seq.max(1);
        Self {
            window: window.max(1),
            capacity: capacity.max(1),
            acked: first_seq - 1,
            next_seq: first_seq,
            pending: BTreeMap::new(),
            pending_by_key: HashMap::new(),
            next_slot: 0,
            in_flight: VecDeque::new(),
            coalesced: 0,
        }
    }

    /// Queues a message. With a key, an unsent message with the same key is
    /// replaced in place (it keeps its position); sent messages are never
    /// altered.
    pub fn push(&mut self, key: Option<K>, message: M) -> Result<(), OutboxError> {
        let slot = key.as_ref().and_then(|k| self.pending_by_key.get(k));
        if let Some(entry) = slot.and_then(|slot| self.pending.get_mut(slot)) {
            entry.1 = message;
            self.coalesced += 1;
            return Ok(());
        }
        if self.len() >= self.capacity {
            return Err(OutboxError::Full {
                capacity: self.capacity,
            });
        }
        let slot = self.next_slot;
        self.next_slot += 1;
        if let Some(k) = &key {
            self.pending_by_key.insert(k.clone(), slot);
        }
        self.pending.insert(slot, (key, message));
        Ok(())
    }

    /// Takes the next unsent message if the window allows, assigning its seq.
    pub fn next_to_send(&mut self) -> Option<(u64, M)> {
        if self.in_flight.len() >= self.window {
            return None;
        }
        let (_, (key, message)) = self.pending.pop_first()?;
        if let Some(k) = &key {
            self.pending_by_key.remove(k);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push_back((seq, key, message.clone()));
        Some((seq, message))
    }

    /// Cumulative acknowledgement: everything up to `seq` arrived. Old or
    /// repeated acks are harmless.
    pub fn ack(&mut self, seq: u64) -> Result<(), OutboxError> {
        let highest_sent = self.next_seq - 1;
        if seq > highest_sent {
            return Err(OutboxError::AckBeyondSent {
                acked: seq,
                highest_sent,
            });
        }
        if seq > self.acked {
            self.acked = seq;
            while self.in_flight.front().is_some_and(|(s, _, _)| *s <= seq) {
                self.in_flight.pop_front();
            }
        }
        Ok(())
    }

    /// After a reconnect: the peer says it holds everything up to
    /// `peer_has`. Returns the in-flight messages to send again, in order.
    pub fn resume(&mut self, peer_has: u64) -> Result<Vec<(u64, M)>, OutboxError> {
        self.ack(peer_has)?;
        Ok(self
            .in_flight
            .iter()
            .map(|(seq, _, message)| (*seq, message.clone()))
            .collect())
    }

    /// After a reconnect to a peer that fences older streams off (nothing above `peer_has` can be stored
    /// once it said `peer_has`): the unacknowledged messages go back to the front of the unsent ones, in
    /// order, coalesced by key with each other and with what was queued meanwhile, and numbering goes on
    /// from `peer_has + 1`. What a long outage piled up in flight is then sent once per key instead of
    /// message by message. The newest message of a key takes the place of the newest, not the oldest: it
    /// never moves ahead of an unkeyed message sent after an older one of its key (a status, then a full
    /// snapshot, then the app's removal stays a snapshot, then the removal).
    pub fn resume_coalesced(&mut self, peer_has: u64) -> Result<(), OutboxError> {
        if peer_has < self.acked {
            return Err(OutboxError::ResumeBeforeAcked {
                resume: peer_has,
                acked: self.acked,
            });
        }
        self.ack(peer_has)?;
        let queued: Vec<(Option<K>, M)> = std::mem::take(&mut self.pending).into_values().collect();
        self.pending_by_key.clear();
        let unacked: Vec<(Option<K>, M)> = self
            .in_flight
            .drain(..)
            .map(|(_, key, message)| (key, message))
            .collect();
        self.next_slot = 0;
        for (key, message) in unacked.into_iter().chain(queued) {
            if let Some(older) = key.as_ref().and_then(|k| self.pending_by_key.remove(k)) {
                self.pending.remove(&older);
                self.coalesced += 1;
            }
            let slot = self.next_slot;
            self.next_slot += 1;
            if let Some(k) = &key {
                self.pending_by_key.insert(k.clone(), slot);
            }
            self.pending.insert(slot, (key, message));
        }
        self.next_seq = self.acked + 1;
        Ok(())
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn len(&self) -> usize {
        self.pending.len() + self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }

    /// Whether the window has room to send another message.
    pub fn can_send(&self) -> bool {
        self.in_flight.len() < self.window && !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(outbox: &mut Outbox<&'static str, String>) -> Vec<(u64, String)> {
        std::iter::from_fn(|| outbox.next_to_send()).collect()
    }

    #[test]
    fn window_limits_in_flight_and_ack_opens_it() {
        let mut out = Outbox::new(1, 2, 100);
        for i in 0..5 {
            out.push(None, format!("m{i}")).unwrap();
        }
        let sent = drain(&mut out);
        assert_eq!(sent, vec![(1, "m0".into()), (2, "m1".into())]);
        assert!(out.next_to_send().is_none());
        out.ack(1).unwrap();
        assert_eq!(out.next_to_send(), Some((3, "m2".into())));
        assert_eq!(out.in_flight(), 2);
        assert_eq!(out.pending(), 2);
    }

    #[test]
    fn coalesces_unsent_by_key_newest_wins_in_place() {
        let mut out = Outbox::new(1, 10, 100);
        out.push(Some("app-a"), "a1".into()).unwrap();
        out.push(Some("app-b"), "b1".into()).unwrap();
        out.push(Some("app-a"), "a2".into()).unwrap();
        out.push(None, "event".into()).unwrap();
        assert_eq!(out.coalesced(), 1);
        let sent: Vec<_> = drain(&mut out).into_iter().map(|(_, m)| m).collect();
        assert_eq!(sent, ["a2", "b1", "event"]);
        // Once sent, a new status for app-a is a new message.
        out.push(Some("app-a"), "a3".into()).unwrap();
        assert_eq!(out.next_to_send(), Some((4, "a3".into())));
    }

    #[test]
    fn full_is_an_error_not_a_drop() {
        let mut out: Outbox<&str, String> = Outbox::new(1, 1, 2);
        out.push(None, "1".into()).unwrap();
        out.push(None, "2".into()).unwrap();
        assert_eq!(
            out.push(None, "3".into()),
            Err(OutboxError::Full { capacity: 2 })
        );
        // Coalescing still works when full: it adds nothing.
        let mut out: Outbox<&str, String> = Outbox::new(1, 1, 1);
        out.push(Some("k"), "old".into()).unwrap();
        out.push(Some("k"), "new".into()).unwrap();
        assert_eq!(out.next_to_send(), Some((1, "new".into())));
    }

    #[test]
    fn a_coalesced_resume_renumbers_and_sends_each_key_once() {
        let mut out = Outbox::new(1, 10, 100);
        out.push(Some("app-a"), "a1".into()).unwrap();
        drain(&mut out);
        out.push(Some("app-b"), "b1".into()).unwrap();
        out.push(None, "event-1".into()).unwrap();
        out.push(Some("app-a"), "a2".into()).unwrap();
        drain(&mut out);
        out.push(Some("app-a"), "a3".into()).unwrap();
        out.push(Some("app-b"), "b2".into()).unwrap();
        // Sent into a dead stream: seq 2 to 6 never arrived.
        drain(&mut out);
        out.push(None, "event-2".into()).unwrap();
        out.push(Some("app-c"), "c1".into()).unwrap();
        // The peer holds seq 1 (a1) only.
        out.resume_coalesced(1).unwrap();
        assert_eq!(out.in_flight(), 0);
        assert_eq!(out.coalesced(), 2);
        // Each key once, at its newest place: nothing moves ahead of an unkeyed message sent after it.
        assert_eq!(
            drain(&mut out),
            vec![
                (2, "event-1".into()),
                (3, "a3".into()),
                (4, "b2".into()),
                (5, "event-2".into()),
                (6, "c1".into()),
            ]
        );
        assert_eq!(out.acked(), 1);
        // Acknowledgements count from the new numbering.
        out.ack(6).unwrap();
        assert!(out.is_empty());
        assert_eq!(
            out.ack(7),
            Err(OutboxError::AckBeyondSent {
                acked: 7,
                highest_sent: 6
            })
        );
        // A peer that lost what it had acknowledged cannot be resumed from.
        assert_eq!(
            out.resume_coalesced(5),
            Err(OutboxError::ResumeBeforeAcked {
                resume: 5,
                acked: 6
            })
        );
    }

    #[test]
    fn resume_resends_unacked_in_order_and_rejects_bogus_acks() {
        let mut out = Outbox::new(10, 10, 100);
        for i in 0..4 {
            out.push(None, format!("m{i}")).unwrap();
        }
        drain(&mut out);
        let resend = out.resume(11).unwrap();
        assert_eq!(resend, vec![(12, "m2".into()), (13, "m3".into())]);
        // An old ack after resume is harmless.
        out.ack(10).unwrap();
        assert_eq!(out.acked(), 11);
        assert_eq!(
            out.ack(99),
            Err(OutboxError::AckBeyondSent {
                acked: 99,
                highest_sent: 13
            })
        );
    }
}
