//! Admission of API queries: a cost limit per query, and a bounded number of queries running
//! and waiting at once.
//!
//! The adapters (gRPC `GetMetricStatistics`, HTTP statistics and dashboard charts) share one
//! gate. A query is admitted with [`QueryGate::admit`] on the async worker, which never
//! blocks: it answers at once with an [`Admission`] or a [`QueryRefused`] (too costly, or the
//! queue is full). The admission then moves to a blocking thread, where [`Admission::run`]
//! waits for one of `max_running` turns and runs the query. So at most `max_running` queries
//! use a core at any time, at most `max_waiting` more hold a (parked) thread, and every
//! query beyond is refused rather than queued without bound.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Why a query was not admitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryRefused {
    /// The query costs more than the limit per query.
    #[error(
        "the query costs {cost} (periods × statistics × series), more than the limit of {limit} per query (--max-query-cost); use a longer period, a shorter range or fewer statistics"
    )]
    TooCostly {
        /// What the query costs.
        cost: u64,
        /// The limit.
        limit: u64,
    },
    /// Every turn is taken and the queue is full.
    #[error(
        "too many queries at once: {running} run at a time and at most {waiting} may wait, and all are taken; retry later"
    )]
    Busy {
        /// Queries that run at once.
        running: usize,
        /// Queries that may wait.
        waiting: usize,
    },
}

#[derive(Debug, Default)]
struct Counts {
    /// Admitted and not yet finished (running or waiting).
    admitted: usize,
    /// Running now.
    running: usize,
}

/// The shared admission state of API queries (see the module documentation).
#[derive(Debug)]
pub struct QueryGate {
    max_cost: u64,
    max_running: usize,
    max_waiting: usize,
    counts: Mutex<Counts>,
    turn: Condvar,
}

/// The default cost limit per query (`--max-query-cost`).
pub const DEFAULT_MAX_QUERY_COST: u64 = 200_000;
/// The default number of queries that may wait for a turn.
pub const DEFAULT_MAX_WAITING_QUERIES: usize = 64;

impl Default for QueryGate {
    /// The default cost limit, one query at a time and [`DEFAULT_MAX_WAITING_QUERIES`] waiting.
    fn default() -> Self {
        QueryGate::new(DEFAULT_MAX_QUERY_COST, 1, DEFAULT_MAX_WAITING_QUERIES)
    }
}

impl QueryGate {
    /// A gate admitting queries that cost at most `max_cost`, running `max_running` (at least
    /// 1) at a time with up to `max_waiting` more waiting.
    pub fn new(max_cost: u64, max_running: usize, max_waiting: usize) -> Self {
        QueryGate {
            max_cost,
            max_running: max_running.max(1),
            max_waiting,
            counts: Mutex::default(),
            turn: Condvar::new(),
        }
    }

    /// The cost limit per query.
    pub fn max_cost(&self) -> u64 {
        self.max_cost
    }

    /// Queries running at once at most.
    pub fn max_running(&self) -> usize {
        self.max_running
    }

    /// Queries waiting for a turn at most.
    pub fn max_waiting(&self) -> usize {
        self.max_waiting
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The counts are plain integers updated in one step: a poisoned lock holds no
        // half-made change.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a query of `cost` (the sum of [`super::QueryPlan::cost`] of the store queries
    /// one request makes), without blocking.
    ///
    /// # Errors
    /// [`QueryRefused::TooCostly`] over the cost limit, [`QueryRefused::Busy`] when
    /// `max_running + max_waiting` queries are already admitted.
    pub fn admit(self: &Arc<Self>, cost: u64) -> Result<Admission, QueryRefused> {
        if cost > self.max_cost {
            return Err(QueryRefused::TooCostly {
                cost,
                limit: self.max_cost,
            });
        }
        let mut counts = self.counts();
        if counts.admitted >= self.max_running + self.max_waiting {
            return Err(QueryRefused::Busy {
                running: self.max_running,
                waiting: self.max_waiting,
            });
        }
        counts.admitted += 1;
        Ok(Admission {
            gate: Arc::clone(self),
        })
    }

    /// Queries admitted and not finished (running or waiting).
    pub fn admitted(&self) -> usize {
        self.counts().admitted
    }
}

/// An admitted query: run it with [`Admission::run`] (on a thread that may block); dropped
/// unused, it leaves the queue.
#[derive(Debug)]
pub struct Admission {
    gate: Arc<QueryGate>,
}

impl Admission {
    /// Waits for a turn (blocking the calling thread), runs `f` and gives the turn back.
    pub fn run<T>(self, f: impl FnOnce() -> T) -> T {
        let gate = &self.gate;
        {
            let mut counts = gate.counts();
            while counts.running >= gate.max_running {
                counts = gate.turn.wait(counts).unwrap_or_else(|p| p.into_inner());
            }
            counts.running += 1;
        }
        // Gives the turn back even if `f` panics.
        struct Turn<'a>(&'a QueryGate);
        impl Drop for Turn<'_> {
            fn drop(&mut self) {
                self.0.counts().running -= 1;
                self.0.turn.notify_one();
            }
        }
        let _turn = Turn(gate);
        f()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut counts = self.gate.counts();
        counts.admitted = counts.admitted.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn refuses_over_the_cost_limit_naming_it() {
        let gate = Arc::new(QueryGate::new(100, 1, 1));
        assert!(gate.admit(100).is_ok());
        let err = gate.admit(101).unwrap_err();
        assert_eq!(
            err,
            QueryRefused::TooCostly {
                cost: 101,
                limit: 100
            }
        );
        assert!(err.to_string().contains("--max-query-cost"), "{err}");
    }

    #[test]
    fn bounds_running_and_waiting_queries() {
        let gate = Arc::new(QueryGate::new(u64::MAX, 2, 3));
        let admitted: Vec<Admission> = (0..5).map(|_| gate.admit(1).unwrap()).collect();
        assert_eq!(gate.admitted(), 5);
        assert_eq!(
            gate.admit(1).unwrap_err(),
            QueryRefused::Busy {
                running: 2,
                waiting: 3
            }
        );
        // Dropping an unused admission frees its place in the queue.
        drop(admitted);
        assert_eq!(gate.admitted(), 0);
        assert!(gate.admit(1).is_ok());
    }

    #[test]
    fn at_most_max_running_run_at_once() {
        let gate = Arc::new(QueryGate::new(u64::MAX, 2, 10));
        let (started_tx, started) = mpsc::channel();
        let (release_tx, release) = mpsc::channel::<()>();
        let release = Arc::new(Mutex::new(release));
        let threads: Vec<_> = (0..5)
            .map(|i| {
                let a = gate.admit(1).unwrap();
                let (started_tx, release) = (started_tx.clone(), Arc::clone(&release));
                std::thread::spawn(move || {
                    a.run(|| {
                        started_tx.send(i).unwrap();
                        release.lock().unwrap().recv().unwrap();
                    })
                })
            })
            .collect();
        // Two start; the third waits until one is released.
        started.recv().unwrap();
        started.recv().unwrap();
        assert_eq!(gate.counts().running, 2);
        assert!(started.try_recv().is_err());
        for _ in 0..5 {
            release_tx.send(()).unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(started.iter().take(3).count(), 3);
        assert_eq!(gate.admitted(), 0);
        assert_eq!(gate.counts().running, 0);
    }

    #[test]
    fn a_panicking_query_gives_its_turn_back() {
        let gate = Arc::new(QueryGate::new(u64::MAX, 1, 0));
        let a = gate.admit(1).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.run(|| panic!("x"))));
        assert!(r.is_err());
        assert_eq!(gate.admitted(), 0);
        assert_eq!(gate.admit(1).unwrap().run(|| 7), 7);
    }
}
