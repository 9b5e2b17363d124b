//! The process-wide budget of bytes held for requests not yet received whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of requests (gRPC messages, HTTP bodies) received but not yet whole, all connections
/// of both servers together, against `--max-buffered-request-bytes`.
///
/// Charges only succeed while the total stays within the limit, so the charged total never
/// exceeds it, whatever the concurrency.
#[derive(Clone, Debug)]
pub struct Budget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Budget {
            inner: Arc::new(Inner {
                used: AtomicUsize::new(0),
                limit,
            }),
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Acquire)
    }

    /// No byte can be charged: new requests are refused.
    pub fn is_exhausted(&self) -> bool {
        self.used() >= self.inner.limit
    }

    /// Charges `bytes` if the total stays within the limit; `false` (and nothing charged)
    /// otherwise.
    pub(crate) fn try_charge(&self, bytes: usize) -> bool {
        let limit = self.inner.limit;
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .is_ok()
    }

    /// Gives back `bytes` charged before.
    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.inner.used.fetch_sub(bytes, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_never_exceed_the_limit_under_concurrency() {
        let budget = Budget::new(1000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let b = budget.clone();
                std::thread::spawn(move || {
                    let mut held = 0;
                    for _ in 0..10_000 {
                        if b.try_charge(7) {
                            held += 7;
                            assert!(b.used() <= 1000);
                        }
                        if held > 70 {
                            b.release(held);
                            held = 0;
                        }
                    }
                    b.release(held);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_charge_that_does_not_fit_is_refused_whole() {
        let budget = Budget::new(10);
        assert!(budget.try_charge(6));
        assert!(!budget.try_charge(5));
        assert_eq!(budget.used(), 6);
        assert!(budget.try_charge(4));
        assert!(budget.is_exhausted());
        budget.release(10);
        assert!(!budget.is_exhausted());
    }
}
