//! The receiver side of a sequenced link: accepts each sequence number once, in order, and reports duplicates and gaps.

/// What to do with a received sequenced message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// The next message: process it, then acknowledge.
    New,
    /// Already processed (a retransmission after resume): skip it, but
    /// acknowledge again so the sender can let go of it.
    Duplicate,
    /// Messages are missing before this one: the link is inconsistent and
    /// must be resumed from `expected`.
    Gap { expected: u64 },
}

/// Tracks the highest contiguous sequence number processed from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbox {
    processed: u64,
}

impl Inbox {
    /// `processed` is the highest seq already handled (durably, for the hub).
    pub fn new(processed: u64) -> Self {
        Self { processed }
    }

    pub fn receive(&mut self, seq: u64) -> Receipt {
        if seq <= self.processed {
            Receipt::Duplicate
        } else if seq == self.processed + 1 {
            Receipt::New
        } else {
            Receipt::Gap {
                expected: self.processed + 1,
            }
        }
    }

    /// Marks `seq` processed; call after handling a `Receipt::New`.
    pub fn processed(&mut self, seq: u64) {
        self.processed = self.processed.max(seq);
    }

    /// The cumulative acknowledgement to send.
    pub fn ack(&self) -> u64 {
        self.processed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Outbox;

    #[test]
    fn duplicates_and_gaps() {
        let mut inbox = Inbox::new(0);
        assert_eq!(inbox.receive(1), Receipt::New);
        inbox.processed(1);
        assert_eq!(inbox.receive(1), Receipt::Duplicate);
        assert_eq!(inbox.receive(3), Receipt::Gap { expected: 2 });
        assert_eq!(inbox.ack(), 1);
    }

    /// A lossy link: the connection drops after a random prefix of each
    /// burst, the sender resumes from the receiver's ack, and every message
    /// arrives exactly once and in order.
    #[test]
    fn exactly_once_in_order_across_disconnects() {
        let mut out: Outbox<u32, u32> = Outbox::new(1, 8, 10_000);
        let mut inbox = Inbox::new(0);
        let mut delivered = Vec::new();
        for m in 0..500u32 {
            out.push(None, m).unwrap();
        }
        let mut round = 0u64;
        while !out.is_empty() {
            round += 1;
            // Reconnect: resend what is in flight, then new messages.
            let mut wire = out.resume(inbox.ack()).unwrap();
            while let Some(next) = out.next_to_send() {
                wire.push(next);
            }
            // The connection breaks after a pseudo-random number of frames.
            let cut = ((round * 7919) % (wire.len() as u64 + 1)) as usize;
            for (seq, msg) in wire.into_iter().take(cut) {
                match inbox.receive(seq) {
                    Receipt::New => {
                        delivered.push(msg);
                        inbox.processed(seq);
                    }
                    Receipt::Duplicate => {}
                    Receipt::Gap { expected } => panic!("gap: expected {expected}, got {seq}"),
                }
            }
            // Some acks make it back before the break.
            if round.is_multiple_of(2) {
                out.ack(inbox.ack()).unwrap();
            }
            assert!(round < 10_000, "no progress");
        }
        assert_eq!(delivered, (0..500).collect::<Vec<_>>());
    }
}
