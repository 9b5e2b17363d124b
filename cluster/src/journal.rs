//! The state journal: one JetStream stream, `THERMOSTAT_STATE` (subjects
//! `thermostat.state.<part>`), holding every write of the alarm and scaling state in the
//! order the cluster made them. Every node applies it, in order, to its own replica of the
//! state. A part is what one writer at a time writes (a partition's alarm states, the
//! leader's); a write names the last sequence of its part it was made on
//! ([`Journal::append`] with `expected_last`), so that a writer that missed a write of its
//! part (a deposed owner, a node that has not caught up) is refused by JetStream itself
//! instead of overwriting what it did not see, while writers of different parts never wait
//! for each other.
//!
//! The entries are opaque bytes here: the binary encodes them (`src/app/cluster_state.rs`).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::Error;
use crate::node::Cluster;

/// The state journal's stream.
pub const STATE_STREAM: &str = "THERMOSTAT_STATE";
const STATE_PREFIX: &str = "thermostat.state";

/// The pointer to the state snapshot, in the cluster's settings bucket.
const SNAPSHOT_KEY: &str = "snapshot.state";

/// How long a read of many entries waits for the next one.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The part of a journal subject (`thermostat.state.<part>`).
fn part_of(subject: &str) -> String {
    subject
        .strip_prefix(STATE_PREFIX)
        .and_then(|p| p.strip_prefix('.'))
        .unwrap_or_default()
        .to_owned()
}

/// How long an append waits for JetStream's acknowledgement.
const APPEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster's state journal ([module docs](self)).
#[derive(Clone, Debug)]
pub struct Journal {
    cluster: Cluster,
    stream: stream::Stream,
}

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The journal has entries the writer has not applied: nothing was written. Catch up,
    /// adopt what they say, and decide again.
    #[error("the state journal moved on past sequence {expected}: another node wrote first")]
    Behind {
        /// The sequence the writer expected to be the last.
        expected: u64,
    },
    /// NATS did not store it (unreachable, timed out, refused).
    #[error(transparent)]
    Failed(#[from] Error),
}

impl Journal {
    /// Opens the journal of `cluster`'s NATS, creating its stream (with the cluster's
    /// replicas) the first time.
    ///
    /// # Errors
    /// JetStream refuses the stream.
    pub async fn open(cluster: &Cluster) -> Result<Journal, Error> {
        let stream = cluster
            .jetstream()
            .get_or_create_stream(stream::Config {
                name: STATE_STREAM.into(),
                subjects: vec![format!("{STATE_PREFIX}.>")],
                num_replicas: cluster.replicas(),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::js("creating the state journal")(&e))?;
        Ok(Journal {
            cluster: cluster.clone(),
            stream,
        })
    }

    /// Appends `entry` to part `part` (letters, digits, `.`, `_`, `-`), only if the part's
    /// last sequence is `expected_last` when one is given (0: the part has no entry yet;
    /// JetStream checks it: `Nats-Expected-Last-Subject-Sequence`). Returns the entry's
    /// sequence once JetStream has stored it.
    ///
    /// # Errors
    /// [`AppendError::Behind`] when the part moved on; [`AppendError::Failed`] when NATS is
    /// unreachable (nothing is sent then) or did not store it.
    pub async fn append(
        &self,
        part: &str,
        entry: Vec<u8>,
        expected_last: Option<u64>,
    ) -> Result<u64, AppendError> {
        if !self.cluster.connected() {
            return Err(Error::Unreachable.into());
        }
        let mut message = jetstream::message::PublishMessage::build().payload(Bytes::from(entry));
        if let Some(last) = expected_last {
            message = message.expected_last_subject_sequence(last);
        }
        let refused = |e: jetstream::context::PublishError| match e.kind() {
            PublishErrorKind::WrongLastSequence => AppendError::Behind {
                expected: expected_last.unwrap_or_default(),
            },
            _ => AppendError::Failed(Error::js("writing to the state journal")(&e)),
        };
        let ack = self
            .cluster
            .jetstream()
            .send_publish(format!("{STATE_PREFIX}.{part}"), message)
            .await
            .map_err(refused)?;
        let ack = tokio::time::timeout(APPEND_TIMEOUT, ack)
            .await
            .map_err(|_| {
                AppendError::Failed(Error::JetStream {
                    what: "writing to the state journal",
                    reason: format!("not acknowledged within {APPEND_TIMEOUT:?}"),
                })
            })?
            .map_err(refused)?;
        Ok(ack.sequence)
    }

    /// The journal's last sequence (0 when it is empty).
    ///
    /// # Errors
    /// NATS cannot be asked.
    pub async fn last_seq(&self) -> Result<u64, Error> {
        let mut stream = self.stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| Error::js("reading the state journal's end")(&e))?;
        Ok(info.state.last_sequence)
    }

    /// The entry at `seq` with its part, or `None` when there is none (a sequence JetStream
    /// skipped).
    ///
    /// # Errors
    /// NATS cannot be asked.
    pub async fn read(&self, seq: u64) -> Result<Option<(String, Vec<u8>)>, Error> {
        match self.stream.get_raw_message(seq).await {
            Ok(m) => Ok(Some((part_of(m.subject.as_str()), m.payload.to_vec()))),
            Err(e) if matches!(e.kind(), stream::RawMessageErrorKind::NoMessageFound) => Ok(None),
            Err(e) => Err(Error::js("reading the state journal")(&e)),
        }
    }

    /// The entries after `after` up to `upto`, in order, at most `max`, each with its
    /// sequence and part, read with one ordered consumer (catching up with many entries at
    /// once; [`read`](Self::read) takes one). Fewer when the stream has fewer, or when a
    /// message does not come within the read timeout.
    ///
    /// # Errors
    /// NATS cannot be asked.
    pub async fn read_range(
        &self,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, Error> {
        let mut out = Vec::new();
        if upto <= after || max == 0 {
            return Ok(out);
        }
        let consumer = self
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| Error::js("reading the state journal")(&e))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| Error::js("reading the state journal")(&e))?;
        while out.len() < max {
            let Ok(Some(Ok(message))) = tokio::time::timeout(READ_TIMEOUT, messages.next()).await
            else {
                break;
            };
            let Ok(info) = message.info() else { break };
            let seq = info.stream_sequence;
            if seq > upto {
                break;
            }
            out.push((
                seq,
                part_of(message.subject.as_str()),
                message.payload.to_vec(),
            ));
            if seq == upto {
                break;
            }
        }
        Ok(out)
    }

    /// The sequence of the state snapshot in the object store (0: there is none): the journal
    /// may hold nothing below it but each part's last entry.
    ///
    /// # Errors
    /// NATS cannot be asked.
    pub async fn snapshot_seq(&self) -> Result<u64, Error> {
        let latest = self.cluster.snapshots().latest_at(SNAPSHOT_KEY).await?;
        Ok(latest.map_or(0, |(p, _)| p.seq))
    }

    /// The state snapshot in the object store: the sequence up to which it holds the journal,
    /// and its bytes (at most [`crate::MAX_SNAPSHOT_BYTES`]).
    ///
    /// # Errors
    /// NATS cannot be asked, or the snapshot is too large.
    pub async fn snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, Error> {
        let snapshots = self.cluster.snapshots();
        let Some((pointer, _)) = snapshots.latest_at(SNAPSHOT_KEY).await? else {
            return Ok(None);
        };
        let bytes = snapshots.fetch(&pointer).await?;
        Ok(Some((pointer.seq, bytes)))
    }

    /// Stores `bytes`, a snapshot of the state holding the journal up to `seq`, as the
    /// cluster's state snapshot if it is newer than the current one, then purges from each
    /// part of `parts` (a part and its last sequence at `seq`) its entries before that last
    /// one: the last entry of every part stays, since appends are checked against it.
    /// Returns whether it is the current snapshot now.
    ///
    /// # Errors
    /// NATS cannot be asked; the journal keeps everything then.
    pub async fn write_snapshot(
        &self,
        seq: u64,
        parts: &[(String, u64)],
        bytes: Vec<u8>,
    ) -> Result<bool, Error> {
        let object = format!("state.{seq}");
        let node = self.cluster.node_id().to_owned();
        let published = self
            .cluster
            .snapshots()
            .put_forward(SNAPSHOT_KEY, &object, seq, bytes, &node)
            .await?;
        if published == crate::snapshot::Published::Superseded {
            return Ok(false);
        }
        for (part, last) in parts {
            if *last > seq {
                continue;
            }
            self.stream
                .purge()
                .filter(format!("{STATE_PREFIX}.{part}"))
                .sequence(*last)
                .await
                .map_err(|e| Error::js("trimming the state journal")(&e))?;
        }
        Ok(true)
    }

    /// The largest entry NATS accepts (its max payload, less room for headers).
    pub fn max_entry_bytes(&self) -> usize {
        self.cluster.max_payload().saturating_sub(4096).max(1024)
    }
}
