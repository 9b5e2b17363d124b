//! Snapshots of the store on disk.
//!
//! A snapshot file is `MAGIC`, a little-endian `u32` format version, then records of
//! `[u32 length][u32 crc32][postcard bytes of one Record]`, then a record of length 0. After
//! the series of each shard comes that shard's write-ahead-log watermark: the snapshot holds
//! exactly the log records up to it, so recovery replays only newer ones. Since format 3, the
//! OTLP cumulative streams follow, one record per stream, then their own watermark: they hold
//! the stream updates of exactly the log records up to it (`streams.rs`); a format 2 snapshot
//! has none and loads with no streams. It is written to a
//! temporary file, fsynced and renamed over the previous one, so a crash while writing leaves
//! the previous snapshot in place.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use thermostat_metrics::Store;
use thermostat_metrics::store::{ExportItem, SeriesExport};
use thermostat_otlp::{StreamKey, StreamState, StreamUpdate};

use crate::streams::Applied;

const MAGIC: &[u8; 8] = b"THRMSNAP";
/// The snapshot format this build writes (3: with the OTLP streams).
pub(crate) const FORMAT_VERSION: u32 = 3;
/// The oldest snapshot format this build reads (2: without streams).
pub(crate) const OLDEST_FORMAT_VERSION: u32 = 2;

/// One record of a snapshot. Variants are append-only (postcard numbers them in order).
#[derive(serde::Serialize, serde::Deserialize)]
enum Record {
    Series(SeriesExport),
    Shard {
        index: u32,
        count: u32,
        watermark: u64,
    },
    /// One OTLP cumulative stream (format 3).
    Stream {
        key: StreamKey,
        state: StreamState,
    },
    /// After the streams: how many there were, and the newest log record whose stream updates
    /// they hold (format 3).
    Streams {
        count: u64,
        watermark: u64,
    },
}
const FILE_NAME: &str = "series.snapshot";

/// Why a snapshot could not be read or written. Not exported: carried by [`crate::Error`]
/// ([`crate::Error::Snapshot`], [`crate::Error::LoadSnapshot`], [`crate::Error::WriteSnapshot`]).
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is not a Thermostat snapshot.
    #[error("{path}: not a Thermostat snapshot (bad magic bytes)")]
    NotASnapshot {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a Thermostat with a format this build does not know.
    #[error(
        "{path}: snapshot format version {found} is not supported by this build (it reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}); use the Thermostat version that wrote it, or move the data directory aside"
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// Version found.
        found: u32,
    },
    /// A record failed its checksum or could not be decoded.
    #[error("{path}: record at byte offset {offset} is corrupt ({why})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// What is wrong.
        why: String,
    },
}

/// What a snapshot held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnapshotInfo {
    /// Series written or read.
    pub series: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// Per shard, the newest log record the snapshot holds.
    pub watermarks: Vec<u64>,
    /// The OTLP cumulative streams, and the newest log record whose updates they hold.
    pub(crate) streams: Applied,
}

impl SnapshotInfo {
    /// How many OTLP cumulative streams the snapshot held.
    pub fn otlp_streams(&self) -> usize {
        self.streams.streams.len()
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a snapshot of `store` into `dir` (created if missing).
///
/// # Errors
/// Any file-system error, with the path.
pub(crate) fn save_snapshot(store: &Store, dir: &Path) -> Result<SnapshotInfo, PersistError> {
    save_snapshot_with(store, Applied::default, dir)
}

/// Writes a snapshot of `store` and of the OTLP streams `streams` gives (called once the
/// store's series are written, so that the streams are at least as new as every shard's
/// watermark) into `dir`.
///
/// # Errors
/// Any file-system error, with the path.
pub(crate) fn save_snapshot_with(
    store: &Store,
    streams: impl FnOnce() -> Applied,
    dir: &Path,
) -> Result<SnapshotInfo, PersistError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let file = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut out = BufWriter::new(file);
    let mut result = out
        .write_all(MAGIC)
        .and_then(|_| out.write_all(&FORMAT_VERSION.to_le_bytes()));
    let mut info = SnapshotInfo::default();
    let count = u32::try_from(store.shard_count()).unwrap_or(u32::MAX);
    store.export_shards(|item| {
        if result.is_err() {
            return;
        }
        let record = match item {
            ExportItem::Series(series) => {
                info.series += 1;
                Record::Series(series)
            }
            ExportItem::ShardEnd { index, watermark } => {
                info.watermarks.push(watermark);
                Record::Shard {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    count,
                    watermark,
                }
            }
        };
        result = write_record(&mut out, &record);
    });
    result.map_err(io_err(&tmp))?;
    let streams = streams();
    let mut count = 0u64;
    for (key, state) in streams.streams.iter() {
        let record = Record::Stream {
            key: key.clone(),
            state: state.clone(),
        };
        write_record(&mut out, &record).map_err(io_err(&tmp))?;
        count += 1;
    }
    let end = Record::Streams {
        count,
        watermark: streams.seq,
    };
    write_record(&mut out, &end).map_err(io_err(&tmp))?;
    info.streams = streams;
    out.write_all(&0u32.to_le_bytes()).map_err(io_err(&tmp))?;
    let file = out.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err(&tmp))?;
    info.bytes = file.metadata().map_err(io_err(&tmp))?.len();
    drop(file);
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    if let Ok(d) = File::open(dir) {
        // Persist the rename itself; not every platform supports fsync on a directory.
        let _ = d.sync_all();
    }
    Ok(info)
}

/// Loads the snapshot in `dir` into `store`; `Ok(None)` when there is none.
///
/// # Errors
/// A file that is not a snapshot, of an unknown version, or corrupt: the server must not
/// start over it silently.
pub(crate) fn load_snapshot(
    store: &Store,
    dir: &Path,
) -> Result<Option<SnapshotInfo>, PersistError> {
    let path = dir.join(FILE_NAME);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let bytes = file.metadata().map_err(io_err(&path))?.len();
    let mut r = BufReader::new(file);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| PersistError::NotASnapshot { path: path.clone() })?;
    if &magic != MAGIC {
        return Err(PersistError::NotASnapshot { path });
    }
    let mut word = [0u8; 4];
    r.read_exact(&mut word)
        .map_err(|_| PersistError::NotASnapshot { path: path.clone() })?;
    let found = u32::from_le_bytes(word);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
        return Err(PersistError::UnknownVersion { path, found });
    }
    let mut offset = 12u64;
    let mut info = SnapshotInfo {
        series: 0,
        bytes,
        watermarks: Vec::new(),
        streams: Applied::default(),
    };
    let mut streams = 0u64;
    let corrupt = |offset, why: String| PersistError::Corrupt {
        path: path.clone(),
        offset,
        why,
    };
    loop {
        let Some((record, len)) = read_record(&mut r).map_err(|why| corrupt(offset, why))? else {
            break;
        };
        match record {
            Record::Series(series) => {
                store.import(series);
                info.series += 1;
            }
            Record::Shard {
                index,
                count,
                watermark,
            } => {
                if count as usize != store.shard_count() || index as usize != info.watermarks.len()
                {
                    let why = format!(
                        "shard {index} of {count} does not fit a store of {} shards",
                        store.shard_count()
                    );
                    return Err(corrupt(offset, why));
                }
                info.watermarks.push(watermark);
            }
            Record::Stream { key, state } => {
                info.streams
                    .streams
                    .apply(&StreamUpdate::Set { key, state });
                streams += 1;
            }
            Record::Streams { count, watermark } => {
                if count != streams {
                    let why = format!("{streams} streams where {count} were written");
                    return Err(corrupt(offset, why));
                }
                info.streams.seq = watermark;
            }
        }
        offset += 8 + len as u64;
    }
    if !info.watermarks.is_empty() {
        store
            .set_watermarks(&info.watermarks)
            .map_err(|why| corrupt(offset, why))?;
    }
    Ok(Some(info))
}

/// Writes one record: its length, its CRC-32 and its postcard bytes.
fn write_record(out: &mut impl Write, record: &Record) -> io::Result<()> {
    let bytes = postcard::to_stdvec(record).map_err(io::Error::other)?;
    let len = u32::try_from(bytes.len()).map_err(io::Error::other)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&crc32fast::hash(&bytes).to_le_bytes())?;
    out.write_all(&bytes)
}

/// Reads the next record and its length in bytes; `None` at the end mark. A length is
/// believed only as far as bytes follow (a corrupt or hostile length allocates nothing).
fn read_record(r: &mut impl Read) -> Result<Option<(Record, usize)>, String> {
    let mut word = [0u8; 4];
    r.read_exact(&mut word)
        .map_err(|e| format!("truncated: {e}"))?;
    let len = u32::from_le_bytes(word) as usize;
    if len == 0 {
        return Ok(None);
    }
    r.read_exact(&mut word)
        .map_err(|e| format!("truncated: {e}"))?;
    let crc = u32::from_le_bytes(word);
    let mut buf = Vec::new();
    r.take(len as u64)
        .read_to_end(&mut buf)
        .map_err(|e| format!("truncated: {e}"))?;
    if buf.len() < len {
        return Err(format!("truncated: {} of {len} bytes", buf.len()));
    }
    if crc32fast::hash(&buf) != crc {
        return Err("checksum mismatch".into());
    }
    let record = postcard::from_bytes(&buf).map_err(|e| e.to_string())?;
    Ok(Some((record, len)))
}

const PARTITION_MAGIC: &[u8; 8] = b"THRMPART";
/// The partition snapshot format this build writes (format 1, without cumulative streams, is
/// read too).
const PARTITION_FORMAT: u32 = 2;
const OLDEST_PARTITION_FORMAT: u32 = 1;

/// A partition's snapshot as read: its watermark, series and cumulative streams.
pub(crate) type PartitionSnapshot = (u64, Vec<SeriesExport>, Vec<(StreamKey, StreamState)>);

/// A cluster partition's snapshot: store shard `partition`'s series and its watermark (the
/// newest record of the partition's stream subject they hold), then the partition's
/// cumulative streams (`streams`, read after the series), as bytes for the cluster's object
/// store. The format is the local snapshot's records: `PARTITION_MAGIC`, the format, the
/// series, a `Shard` record with the watermark, a `Stream` record per stream (format 2), the
/// end mark.
pub(crate) fn encode_partition(
    store: &Store,
    partition: u32,
    streams: impl FnOnce() -> Vec<(StreamKey, StreamState)>,
) -> (u64, Vec<u8>) {
    let mut out = Vec::new();
    out.extend_from_slice(PARTITION_MAGIC);
    out.extend_from_slice(&PARTITION_FORMAT.to_le_bytes());
    let mut result = Ok(());
    let watermark = store.export_shard(partition as usize, |series| {
        if result.is_ok() {
            result = write_record(&mut out, &Record::Series(series));
        }
    });
    let end = Record::Shard {
        index: partition,
        count: u32::try_from(store.shard_count()).unwrap_or(u32::MAX),
        watermark,
    };
    // Writing into a vector fails only on a record over 4 GiB, which a window cannot make.
    let mut result = result.and_then(|()| write_record(&mut out, &end));
    for (key, state) in streams() {
        result = result.and_then(|()| write_record(&mut out, &Record::Stream { key, state }));
    }
    let _ = result;
    out.extend_from_slice(&0u32.to_le_bytes());
    (watermark, out)
}

/// Reads a partition snapshot of `partition` of `partitions` ([`encode_partition`]): its
/// watermark, series and cumulative streams.
///
/// # Errors
/// Bytes that are not such a snapshot, of another partition or partition count, truncated,
/// failing a checksum, or with a series or stream of another partition: named with the byte
/// offset.
pub(crate) fn decode_partition(
    bytes: &[u8],
    partition: u32,
    partitions: u32,
) -> Result<PartitionSnapshot, String> {
    let mut r = bytes;
    if r.len() < 12 || &r[..8] != PARTITION_MAGIC {
        return Err("not a Thermostat partition snapshot (bad magic bytes)".into());
    }
    let found = u32::from_le_bytes([r[8], r[9], r[10], r[11]]);
    if !(OLDEST_PARTITION_FORMAT..=PARTITION_FORMAT).contains(&found) {
        return Err(format!(
            "partition snapshot format {found} is not supported by this build (it reads {OLDEST_PARTITION_FORMAT} to {PARTITION_FORMAT})"
        ));
    }
    r = &r[12..];
    let mut offset = 12u64;
    let mut series = Vec::new();
    let mut streams = Vec::new();
    let in_partition = crate::streams::in_partition(partition, partitions);
    let mut watermark = None;
    while let Some((record, len)) =
        read_record(&mut r).map_err(|why| format!("record at byte offset {offset}: {why}"))?
    {
        match record {
            Record::Series(s) if watermark.is_none() => series.push(s),
            Record::Shard {
                index,
                count,
                watermark: w,
            } if watermark.is_none() => {
                if index != partition || count != partitions {
                    return Err(format!(
                        "record at byte offset {offset}: the snapshot of partition {index} of {count}, not {partition} of {partitions}"
                    ));
                }
                watermark = Some(w);
            }
            Record::Stream { key, state } if watermark.is_some() => {
                if !in_partition(&key) {
                    return Err(format!(
                        "record at byte offset {offset}: a cumulative stream of another partition than {partition}"
                    ));
                }
                streams.push((key, state));
            }
            _ => {
                return Err(format!(
                    "record at byte offset {offset}: not expected there"
                ));
            }
        }
        offset += 8 + len as u64;
    }
    let watermark = watermark.ok_or_else(|| "the snapshot ends before its watermark".to_owned())?;
    Ok((watermark, series, streams))
}

#[cfg(test)]
mod tests {
    use thermostat_metrics::{
        Observation, Period, Query, Resolution, Sample, SeriesKey, Timestamp, Unit,
    };

    use super::*;

    fn filled() -> (Store, SeriesKey, Timestamp) {
        let store = Store::new(4);
        let now = Timestamp::from_secs(1_800_000_000);
        let key = SeriesKey::new("App", "Latency", vec![]);
        let batch: Vec<_> = (0..500)
            .map(|i| {
                let obs = Observation {
                    timestamp: now.sub_millis(i * 1000),
                    unit: Unit::Milliseconds,
                    resolution: Resolution::Standard,
                    sample: Sample::Value(i as f64),
                };
                (key.clone(), obs)
            })
            .collect();
        store.record_batch(&batch);
        (store, key, now)
    }

    fn stats(store: &Store, key: &SeriesKey, now: Timestamp) -> Vec<thermostat_metrics::Datapoint> {
        let q = Query {
            key: key.clone(),
            unit: None,
            start: now.sub_millis(3_600_000),
            end: now.add_millis(60_000),
            period: Period::ONE_MINUTE,
            statistics: ["SampleCount", "Sum", "p99"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect(),
        };
        store.query(&q, now).unwrap()
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (store, key, now) = filled();
        let saved = save_snapshot(&store, dir.path()).unwrap();
        assert_eq!(saved.series, 1);
        let back = Store::new(4);
        let loaded = load_snapshot(&back, dir.path()).unwrap().unwrap();
        assert_eq!(loaded.series, 1);
        assert_eq!(stats(&store, &key, now), stats(&back, &key, now));
    }

    #[test]
    fn missing_snapshot_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_snapshot(&Store::new(4), dir.path()).unwrap().is_none());
    }

    #[test]
    fn refuses_unknown_version_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, _) = filled();
        save_snapshot(&store, dir.path()).unwrap();
        let path = dir.path().join(FILE_NAME);
        let good = fs::read(&path).unwrap();

        let mut v9 = good.clone();
        v9[8..12].copy_from_slice(&9u32.to_le_bytes());
        fs::write(&path, &v9).unwrap();
        let e = load_snapshot(&Store::new(4), dir.path()).unwrap_err();
        assert!(
            matches!(e, PersistError::UnknownVersion { found: 9, .. }),
            "{e}"
        );

        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        // The offset of the record that holds byte `mid`.
        let mut record = 12;
        loop {
            let len = u32::from_le_bytes(good[record..record + 4].try_into().unwrap()) as usize;
            if record + 8 + len > mid {
                break;
            }
            record += 8 + len;
        }
        fs::write(&path, &flipped).unwrap();
        let e = load_snapshot(&Store::new(4), dir.path()).unwrap_err();
        assert!(
            matches!(e, PersistError::Corrupt { offset, .. } if offset == record as u64),
            "{e} (expected offset {record})"
        );
        fs::write(&path, &good).unwrap();
        let e = load_snapshot(&Store::new(8), dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("does not fit a store of 8 shards"),
            "{e}"
        );

        fs::write(&path, b"hello world, not a snapshot").unwrap();
        assert!(matches!(
            load_snapshot(&Store::new(4), dir.path()),
            Err(PersistError::NotASnapshot { .. })
        ));
    }
}
