//! The shared outbox port ([`SharedOutbox`]): several nodes keeping one outbox (cluster
//! mode). Each node's [`Outbox`](crate::outbox::Outbox) is a replica; every write goes
//! through the port, which the binary implements by writing it to the cluster's journal
//! first and then applying it to this node's replica, so that every replica applies the
//! same writes in the same order (and assigns the same ids). Only one node delivers at a
//! time ([`Dispatcher::with_shared`](crate::Dispatcher::with_shared)): a notification
//! written by one node is delivered by whichever delivers, and a delivery recorded by one is
//! never made again by another.

use thermostat_alarms::notifications::Notification;
use thermostat_metrics::Timestamp;

use crate::error::Result;
use crate::outbox::{Attempt, Next, OutboxRecord};

/// Where the outbox's writes go when several nodes share it.
pub trait SharedOutbox: Send + Sync + std::fmt::Debug {
    /// [`Outbox::insert`](crate::outbox::Outbox::insert), for every replica.
    ///
    /// # Errors
    /// The write was not stored; nothing of it is applied anywhere.
    fn insert(&self, batch: Vec<Notification>, now: Timestamp) -> Result<Vec<OutboxRecord>>;

    /// [`Outbox::record_attempt`](crate::outbox::Outbox::record_attempt), for every replica.
    ///
    /// # Errors
    /// The write was not stored; nothing of it is applied anywhere.
    fn record_attempt(&self, id: u64, attempt: Attempt, next: Next) -> Result<OutboxRecord>;
}

/// A single node's outbox writes to itself.
impl SharedOutbox for crate::outbox::Outbox {
    fn insert(&self, batch: Vec<Notification>, now: Timestamp) -> Result<Vec<OutboxRecord>> {
        crate::outbox::Outbox::insert(self, batch, now)
    }

    fn record_attempt(&self, id: u64, attempt: Attempt, next: Next) -> Result<OutboxRecord> {
        crate::outbox::Outbox::record_attempt(self, id, attempt, next)
    }
}
