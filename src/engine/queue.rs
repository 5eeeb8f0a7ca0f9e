//! The event queue: integer nanosecond time, ties broken by scheduling
//! order, and lazy cancellation by generation numbers (an event whose
//! guest has died since it was scheduled is dropped when it comes up).

/// Simulated time in nanoseconds since the run began.
pub type SimTime = u64;

/// Bits of an entry's second word that hold the payload slot; the bits
/// above hold the scheduling sequence number.
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// Sequence numbers left before they are renumbered.
const SEQ_LIMIT: u64 = 1 << (64 - SLOT_BITS);

/// A 4-ary min-heap of time·2^64 + sequence·2^24 + slot: ordering by the
/// number is ordering by time, then by scheduling order. Sixteen-byte entries and
/// four children per node keep a pop to a few cache lines; the engine pops
/// one event per guest slice, so this is on its hot path.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: Vec<u128>,
    payloads: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
    now: SimTime,
    /// The root is an event already handed out by [`EventQueue::pop`],
    /// kept in place for the next [`EventQueue::schedule`].
    held: bool,
}

/// Scheduling before the current time would break causality.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event was scheduled at {at} ns, before the current time {now} ns")]
pub struct PastEvent {
    pub at: SimTime,
    pub now: SimTime,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { heap: Vec::new(), payloads: Vec::new(), free: Vec::new(), seq: 0, now: 0, held: false }
    }
}

impl<E> EventQueue<E> {
    pub fn now(&self) -> SimTime {
        self.now
    }

    pub fn schedule(&mut self, at: SimTime, event: E) -> Result<(), PastEvent> {
        if at < self.now {
            return Err(PastEvent { at, now: self.now });
        }
        if self.seq == SEQ_LIMIT {
            self.renumber();
        }
        if std::mem::take(&mut self.held) {
            // The root was handed out by `pop`: the new entry takes its
            // place and slot, in one sift down.
            let slot = self.heap[0] as u64 & SLOT_MASK;
            self.payloads[slot as usize] = Some(event);
            let key = (u128::from(at) << 64) | u128::from((self.seq << SLOT_BITS) | slot);
            self.seq += 1;
            self.sift_down(key);
            return Ok(());
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.payloads[s as usize] = Some(event);
                u64::from(s)
            }
            None => {
                self.payloads.push(Some(event));
                let s = (self.payloads.len() - 1) as u64;
                assert!(s <= SLOT_MASK, "more than 2^24 pending events");
                s
            }
        };
        self.heap.push((u128::from(at) << 64) | u128::from((self.seq << SLOT_BITS) | slot));
        self.seq += 1;
        self.sift_up(self.heap.len() - 1);
        Ok(())
    }

    /// Time of the next event, if any.
    pub fn peek_time(&mut self) -> Option<SimTime> {
        self.release();
        self.heap.first().map(|&e| (e >> 64) as SimTime)
    }

    /// Hand out the next event. Its entry stays at the root until the next
    /// `schedule` takes its place (one sift down, where a pop and a push
    /// take two: each guest slice schedules the next) or the next look at
    /// the queue removes it. Anything scheduled is at or after now and
    /// later in order, so it never sorts above the root.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.release();
        let &top = self.heap.first()?;
        let t = (top >> 64) as SimTime;
        self.now = t;
        let e = self.payloads[(top as u64 & SLOT_MASK) as usize].take().expect("each slot is popped once");
        self.held = true;
        Some((t, e))
    }

    /// Remove a handed-out root that no `schedule` replaced.
    fn release(&mut self) {
        if std::mem::take(&mut self.held) {
            let slot = (self.heap[0] as u64 & SLOT_MASK) as u32;
            let last = self.heap.pop().expect("a held root is in the heap");
            if !self.heap.is_empty() {
                self.sift_down(last);
            }
            self.free.push(slot);
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len() - usize::from(self.held)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sift_up(&mut self, mut i: usize) {
        let e = self.heap[i];
        while i > 0 {
            let parent = (i - 1) / 4;
            if self.heap[parent] <= e {
                break;
            }
            self.heap[i] = self.heap[parent];
            i = parent;
        }
        self.heap[i] = e;
    }

    /// Put `e` at the root and move it down to its place.
    fn sift_down(&mut self, e: u128) {
        let n = self.heap.len();
        let mut i = 0;
        loop {
            let first = 4 * i + 1;
            if first >= n {
                break;
            }
            // The smallest child, chosen without branches (the comparisons
            // of random times would mispredict).
            let (mut best, mut key) = (first, self.heap[first]);
            for c in first + 1..(first + 4).min(n) {
                let k = self.heap[c];
                let less = k < key;
                best = if less { c } else { best };
                key = if less { k } else { key };
            }
            if e <= key {
                break;
            }
            self.heap[i] = key;
            i = best;
        }
        self.heap[i] = e;
    }

    /// Sequence numbers ran out: number the pending events afresh, in
    /// their order, so ties still pop in scheduling order.
    fn renumber(&mut self) {
        self.heap.sort_unstable();
        for (k, e) in self.heap.iter_mut().enumerate() {
            let slot = *e as u64 & SLOT_MASK;
            *e = (*e >> 64 << 64) | u128::from(((k as u64) << SLOT_BITS) | slot);
        }
        self.seq = self.heap.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_pop_in_scheduling_order() {
        let mut q = EventQueue::default();
        q.schedule(10, "b").unwrap();
        q.schedule(5, "a").unwrap();
        q.schedule(10, "c").unwrap();
        q.schedule(10, "d").unwrap();
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(5, "a"), (10, "b"), (10, "c"), (10, "d")]);
    }

    #[test]
    fn scheduling_into_the_past_is_an_error() {
        let mut q = EventQueue::default();
        q.schedule(10, ()).unwrap();
        q.pop();
        assert_eq!(q.schedule(9, ()), Err(PastEvent { at: 9, now: 10 }));
        assert!(q.schedule(10, ()).is_ok());
    }

    /// Pops in (time, scheduling order), checked against a sort of the same
    /// events (the definition of the order), with pops interleaved and
    /// through a renumbering of sequence numbers.
    fn against_a_sort(start_seq: u64) {
        let mut q = EventQueue { seq: start_seq, ..EventQueue::default() };
        let mut pending: Vec<(SimTime, usize, u32)> = Vec::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut order = 0usize;
        for id in 0..5000u32 {
            let at = q.now() + next() % 50;
            q.schedule(at, id).unwrap();
            pending.push((at, order, id));
            order += 1;
            match next() % 6 {
                0 | 1 => {
                    pending.sort_unstable();
                    let want = pending.remove(0);
                    assert_eq!(q.pop(), Some((want.0, want.2)));
                }
                2 => {
                    // A pop, then at once a new event (as a slice schedules
                    // the next), which takes the popped root's place.
                    pending.sort_unstable();
                    let want = pending.remove(0);
                    assert_eq!(q.pop(), Some((want.0, want.2)));
                    let at = q.now() + next() % 50;
                    q.schedule(at, id + 200_000).unwrap();
                    pending.push((at, order, id + 200_000));
                    order += 1;
                }
                3 => {
                    // A pop with nothing scheduled after it.
                    pending.sort_unstable();
                    let want = pending.remove(0);
                    assert_eq!(q.pop(), Some((want.0, want.2)));
                }
                _ => {}
            }
        }
        pending.sort_unstable();
        for want in pending {
            assert_eq!(q.pop(), Some((want.0, want.2)));
        }
        assert!(q.is_empty());
    }

    #[test]
    fn pops_in_time_then_scheduling_order() {
        against_a_sort(0);
    }

    #[test]
    fn renumbering_sequence_numbers_keeps_the_order() {
        against_a_sort(SEQ_LIMIT - 1000);
    }
}
