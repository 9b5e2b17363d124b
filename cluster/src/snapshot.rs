//! Partition snapshots in the JetStream object store, and trimming the ingest stream after
//! them.
//!
//! An owner writes a snapshot of each partition it owns ([`crate::Applier::snapshot`]) as an
//! object of the bucket `THERMOSTAT_SNAPSHOTS`, named for the partition and the newest stream
//! record it holds (`partition.<n>.<seq>`: a new snapshot never overwrites one in use). Then
//! it moves the partition's pointer, the key `snapshot.<n>` of the settings bucket, to it by
//! compare-and-swap, only forward (a deposed owner's late snapshot is older than the pointer
//! and is dropped), deletes the snapshot the pointer left, and purges the partition's subject
//! of the ingest stream below the snapshot's sequence. A node taking a partition over whose
//! own data are older than the pointer's snapshot loads it and reads the stream on from there;
//! so what the stream no longer holds is always in a snapshot.

use async_nats::jetstream::{self, kv, object_store, stream};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::error::Error;

/// The object store bucket of partition snapshots.
pub const SNAPSHOT_BUCKET: &str = "THERMOSTAT_SNAPSHOTS";

/// The largest snapshot a node loads (a larger object is refused by name, not read).
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 30;

/// Where a partition's snapshot is: the value of `snapshot.<n>` in the settings bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pointer {
    /// The object's name.
    pub(crate) object: String,
    /// The newest record of the partition's subject it holds.
    pub(crate) seq: u64,
    /// Its size in bytes.
    pub(crate) bytes: u64,
    /// The node that wrote it.
    pub(crate) node: String,
}

/// What publishing a snapshot did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Published {
    /// It is the current snapshot now (for a partition's: the stream holds nothing of the
    /// partition below its sequence any more, the record at it is kept).
    Current,
    /// The pointer was already at `seq` or beyond (another owner's newer snapshot): dropped.
    Superseded,
}

fn pointer_key(partition: u32) -> String {
    format!("snapshot.{partition}")
}

/// The snapshots of one cluster.
pub(crate) struct Snapshots {
    objects: object_store::ObjectStore,
    meta: kv::Store,
    stream: stream::Stream,
    subject_of: fn(u32) -> String,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots")
            .field("bucket", &SNAPSHOT_BUCKET)
            .finish_non_exhaustive()
    }
}

impl Snapshots {
    /// Creates the bucket (or opens it).
    pub(crate) async fn open(
        js: &jetstream::Context,
        meta: kv::Store,
        stream: stream::Stream,
        replicas: usize,
        subject_of: fn(u32) -> String,
    ) -> Result<Snapshots, Error> {
        let objects = js
            .create_object_store(object_store::Config {
                bucket: SNAPSHOT_BUCKET.into(),
                num_replicas: replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::js("creating the snapshot bucket")(&e))?;
        Ok(Snapshots {
            objects,
            meta,
            stream,
            subject_of,
        })
    }

    /// The partition's current snapshot, if any.
    pub(crate) async fn latest(&self, partition: u32) -> Result<Option<(Pointer, u64)>, Error> {
        self.latest_at(&pointer_key(partition)).await
    }

    /// The snapshot the pointer `key` names, with the pointer's revision; an entry that does
    /// not decode counts as none (logged), since then no purge was ever based on it.
    pub(crate) async fn latest_at(&self, key: &str) -> Result<Option<(Pointer, u64)>, Error> {
        let entry = self
            .meta
            .entry(key)
            .await
            .map_err(|e| Error::js("reading a snapshot pointer")(&e))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(None);
        };
        match serde_json::from_slice::<Pointer>(&entry.value) {
            Ok(p) => Ok(Some((p, entry.revision))),
            Err(e) => {
                tracing::warn!(key, error = %e, "A snapshot pointer does not decode; ignored.");
                Ok(None)
            }
        }
    }

    /// Reads the snapshot `pointer` names, at most [`MAX_SNAPSHOT_BYTES`] (checked against
    /// the object's size before anything is read, and while reading).
    pub(crate) async fn fetch(&self, pointer: &Pointer) -> Result<Vec<u8>, Error> {
        let mut object = self
            .objects
            .get(&pointer.object)
            .await
            .map_err(|e| Error::js("opening a partition snapshot")(&e))?;
        let size = object.info().size;
        if size > MAX_SNAPSHOT_BYTES {
            return Err(Error::Settings(format!(
                "snapshot {} is {size} bytes, more than the {MAX_SNAPSHOT_BYTES} a node loads",
                pointer.object
            )));
        }
        let mut bytes = Vec::with_capacity(size);
        (&mut object)
            .take(MAX_SNAPSHOT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::js("reading a partition snapshot")(&e))?;
        if bytes.len() != size {
            return Err(Error::Settings(format!(
                "snapshot {} has {} bytes where its description says {size}",
                pointer.object,
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Stores `bytes`, the snapshot of `partition` up to record `seq` written by `node`, makes
    /// it the partition's snapshot if it is newer than the current one, and trims the stream.
    pub(crate) async fn publish(
        &self,
        partition: u32,
        seq: u64,
        bytes: Vec<u8>,
        node: &str,
    ) -> Result<Published, Error> {
        let object = format!("partition.{partition}.{seq}");
        let published = self
            .put_forward(&pointer_key(partition), &object, seq, bytes, node)
            .await?;
        if published == Published::Superseded {
            return Ok(published);
        }
        // Records below `seq` are in the snapshot; `seq` itself stays, so the subject always
        // shows its last sequence.
        self.stream
            .purge()
            .filter((self.subject_of)(partition))
            .sequence(seq)
            .await
            .map_err(|e| Error::js("trimming the ingest stream")(&e))?;
        Ok(published)
    }

    /// Stores `bytes` as `object` (a snapshot up to `seq`, written by `node`) and moves the
    /// pointer `key` to it if it is newer than the one it names, by compare-and-swap (of two
    /// writers racing, the newer snapshot wins); deletes the object the pointer left, or this
    /// one when it lost. Trimming what the snapshot holds is the caller's, once this returns
    /// [`Published::Current`].
    pub(crate) async fn put_forward(
        &self,
        key: &str,
        object: &str,
        seq: u64,
        bytes: Vec<u8>,
        node: &str,
    ) -> Result<Published, Error> {
        if self
            .latest_at(key)
            .await?
            .is_some_and(|(p, _)| p.seq >= seq)
        {
            return Ok(Published::Superseded);
        }
        let size = bytes.len() as u64;
        self.objects
            .put(object, &mut bytes.as_slice())
            .await
            .map_err(|e| Error::js("storing a snapshot")(&e))?;
        let pointer = Pointer {
            object: object.to_owned(),
            seq,
            bytes: size,
            node: node.to_owned(),
        };
        let body: Bytes = serde_json::to_vec(&pointer).unwrap_or_default().into();
        let replaced = loop {
            let current = self.latest_at(key).await?;
            if current.as_ref().is_some_and(|(p, _)| p.seq >= seq) {
                let _ = self.objects.delete(object).await;
                return Ok(Published::Superseded);
            }
            let written = match &current {
                Some((_, revision)) => self
                    .meta
                    .update(key, body.clone(), *revision)
                    .await
                    .map_err(|e| e.to_string()),
                None => self
                    .meta
                    .create(key, body.clone())
                    .await
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(_) => break current.map(|(p, _)| p),
                Err(e) => {
                    tracing::debug!(key, error = %e, "A snapshot pointer moved meanwhile; reading it again.")
                }
            }
        };
        if let Some(old) = replaced
            && old.object != object
            && let Err(e) = self.objects.delete(&old.object).await
        {
            tracing::warn!(object = old.object, error = %e, "Could not delete a replaced snapshot.");
        }
        Ok(Published::Current)
    }
}
