use prost::Message as _;
use thermostat_metrics::{Period, Query, Store, Timestamp};
use thermostat_proto::v1::{MetricDatum, PutMetricDataRequest};

use super::*;
use crate::convert::validate_request;
use crate::intern::Interner;

const NOW: Timestamp = Timestamp(1_800_000_000_000);

fn request(n: usize, value: f64) -> PutMetricDataRequest {
    PutMetricDataRequest {
        namespace: "Test".into(),
        metric_data: (0..n)
            .map(|i| MetricDatum {
                metric_name: "M".into(),
                dimensions: vec![thermostat_proto::v1::Dimension {
                    name: "Host".into(),
                    value: format!("h{}", i % 7),
                }],
                timestamp_ms: NOW.as_millis() - 30_000,
                value: Some(value),
                ..Default::default()
            })
            .collect(),
    }
}

fn push(wal: &Wal, req: PutMetricDataRequest) -> Result<u64, String> {
    let payload = bytes::Bytes::from(req.encode_to_vec());
    let validated = validate_request(&payload, NOW, &Interner::new(100)).unwrap();
    let (ack, rx) = oneshot::channel();
    wal.submit(Job::new(validated, NOW, ack))
        .map_err(|_| "refused".to_owned())?;
    rx.blocking_recv().unwrap().map_err(|e| e.to_string())
}

/// Total SampleCount and Sum over every series of the test namespace.
fn totals(store: &Store) -> (f64, f64) {
    let mut out = (0.0, 0.0);
    for key in store.list(Some("Test"), None, NOW) {
        let q = Query {
            key: key.clone(),
            unit: None,
            start: NOW.sub_millis(3_600_000),
            end: NOW.add_millis(60_000),
            period: Period::ONE_HOUR,
            statistics: vec!["SampleCount".parse().unwrap(), "Sum".parse().unwrap()],
        };
        for dp in store.query(&q, NOW).unwrap() {
            out.0 += dp.values[0].unwrap();
            out.1 += dp.values[1].unwrap();
        }
    }
    out
}

fn open(dir: &Path, store: &Arc<Store>, opts: impl FnOnce(&mut WalOptions)) -> Wal {
    let report = recover(dir, store, &mut crate::streams::Applied::default(), false).unwrap();
    let mut o = WalOptions::new(dir);
    opts(&mut o);
    Wal::open(o, Arc::clone(store), report.next_seq).unwrap()
}

fn last_segment(dir: &Path) -> PathBuf {
    segments(&wal_dir(dir)).unwrap().pop().unwrap().1
}

#[test]
fn acknowledged_requests_survive_without_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::new(8));
    let wal = open(dir.path(), &store, |_| {});
    for i in 0..20 {
        assert_eq!(
            push(&wal, request(10, i as f64)),
            Ok(i + 1),
            "sequence numbers start at 1"
        );
    }
    let before = totals(&store);
    assert_eq!(before, (200.0, 10.0 * (0..20).sum::<i32>() as f64));
    drop(wal); // as after a crash: no snapshot was written

    let again = Arc::new(Store::new(8));
    let report = recover(
        dir.path(),
        &again,
        &mut crate::streams::Applied::default(),
        false,
    )
    .unwrap();
    assert_eq!(report.replayed, 20);
    assert_eq!(report.next_seq, 21);
    assert_eq!(totals(&again), before);
}

#[test]
fn snapshot_plus_log_counts_everything_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::new(8));
    let wal = open(dir.path(), &store, |o| o.segment_bytes = 2_000);
    for _ in 0..10 {
        push(&wal, request(5, 1.0)).unwrap();
    }
    let info = crate::persist::save_snapshot(&store, dir.path()).unwrap();
    assert!(
        info.watermarks.iter().all(|&w| w == 10),
        "{:?}",
        info.watermarks
    );
    for _ in 0..10 {
        push(&wal, request(5, 2.0)).unwrap();
    }
    let before = totals(&store);
    assert_eq!(before, (100.0, 150.0));
    drop(wal);

    let again = Arc::new(Store::new(8));
    crate::persist::load_snapshot(&again, dir.path())
        .unwrap()
        .unwrap();
    let report = recover(
        dir.path(),
        &again,
        &mut crate::streams::Applied::default(),
        false,
    )
    .unwrap();
    assert_eq!((report.skipped, report.replayed), (10, 10));
    assert_eq!(
        totals(&again),
        before,
        "records in the snapshot are not applied twice"
    );
}

#[test]
fn checkpoints_delete_old_segments_but_never_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::new(4));
    let wal = open(dir.path(), &store, |o| o.segment_bytes = 1_000);
    for _ in 0..30 {
        push(&wal, request(5, 1.0)).unwrap();
    }
    let segs_before = segments(&wal_dir(dir.path())).unwrap().len();
    assert!(segs_before > 3, "small segments rotate: {segs_before}");
    let info = crate::persist::save_snapshot(&store, dir.path()).unwrap();
    let floor = info.watermarks.iter().copied().min().unwrap();
    assert!(wal.remove_segments_up_to(floor).unwrap() > 0);
    let left = segments(&wal_dir(dir.path())).unwrap();
    assert_eq!(
        left.len(),
        1,
        "only the segment being written stays: {left:?}"
    );
    push(&wal, request(5, 1.0)).unwrap();
    drop(wal);

    let again = Arc::new(Store::new(4));
    crate::persist::load_snapshot(&again, dir.path())
        .unwrap()
        .unwrap();
    let report = recover(
        dir.path(),
        &again,
        &mut crate::streams::Applied::default(),
        false,
    )
    .unwrap();
    assert_eq!(report.replayed, 1);
    assert_eq!(
        report.next_seq, 32,
        "numbering continues above the snapshot"
    );
    assert_eq!(totals(&again), (155.0, 155.0));
}

#[test]
fn a_torn_tail_is_cut_and_everything_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::new(4));
    let wal = open(dir.path(), &store, |_| {});
    for _ in 0..5 {
        push(&wal, request(3, 1.0)).unwrap();
    }
    drop(wal);
    let seg = last_segment(dir.path());
    let good_len = fs::metadata(&seg).unwrap().len();
    // A record whose header says 500 bytes but only 10 made it to disk.
    let mut torn = Vec::new();
    torn.extend_from_slice(&500u32.to_le_bytes());
    torn.extend_from_slice(&[7u8; 10]);
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&torn)
        .unwrap();

    let again = Arc::new(Store::new(4));
    let report = recover(
        dir.path(),
        &again,
        &mut crate::streams::Applied::default(),
        false,
    )
    .unwrap();
    assert_eq!(report.replayed, 5);
    assert_eq!(report.truncated_bytes, torn.len() as u64);
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        good_len,
        "the torn bytes are cut off"
    );
    assert_eq!(totals(&again), (15.0, 15.0));
}

#[test]
fn a_corrupt_record_in_the_middle_stops_start_up_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::new(4));
    let wal = open(dir.path(), &store, |_| {});
    for _ in 0..6 {
        push(&wal, request(3, 1.0)).unwrap();
    }
    drop(wal);
    let seg = last_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    let record_len = (bytes.len() - HEADER) / 6;
    let second = HEADER + record_len;
    bytes[second + RECORD_HEADER + 3] ^= 0xff; // inside the payload of record 2
    fs::write(&seg, &bytes).unwrap();

    let err = recover(
        dir.path(),
        &Arc::new(Store::new(4)),
        &mut crate::streams::Applied::default(),
        false,
    )
    .unwrap_err();
    match &err {
        WalError::Corrupt { offset, why, .. } => {
            assert_eq!(*offset, second as u64);
            assert_eq!(why, "checksum mismatch");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("--recover-truncate"), "{err}");

    let again = Arc::new(Store::new(4));
    let report = recover(
        dir.path(),
        &again,
        &mut crate::streams::Applied::default(),
        true,
    )
    .unwrap();
    assert_eq!(
        report.replayed, 1,
        "only the record before the corruption is kept"
    );
    assert_eq!(totals(&again), (3.0, 3.0));
    // Once truncated, a later start is clean.
    assert!(
        recover(
            dir.path(),
            &Arc::new(Store::new(4)),
            &mut crate::streams::Applied::default(),
            false
        )
        .is_ok()
    );
}

#[test]
fn an_unknown_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::new(4));
    let wal = open(dir.path(), &store, |_| {});
    push(&wal, request(1, 1.0)).unwrap();
    drop(wal);
    let seg = last_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
    fs::write(&seg, &bytes).unwrap();
    let err = recover(
        dir.path(),
        &Arc::new(Store::new(4)),
        &mut crate::streams::Applied::default(),
        true,
    )
    .unwrap_err();
    assert!(
        matches!(err, WalError::UnknownVersion { found: 7, .. }),
        "{err}"
    );
}

/// A log written by a build of format 1 (each payload the request as received) replays,
/// datums without a timestamp at their receipt time, and the log goes on in the current
/// format after it.
#[test]
fn a_format_1_log_still_replays() {
    let dir = tempfile::tempdir().unwrap();
    let wal_path = wal_dir(dir.path());
    fs::create_dir_all(&wal_path).unwrap();
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    let mut untimed = request(2, 5.0);
    untimed.metric_data[1].timestamp_ms = 0;
    for (seq, req) in [(1u64, request(3, 1.0)), (2, untimed)] {
        let payload = req.encode_to_vec();
        let received = NOW.sub_millis(90_000).as_millis();
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc_of(seq, received, &payload).to_le_bytes());
        bytes.extend_from_slice(&seq.to_le_bytes());
        bytes.extend_from_slice(&received.to_le_bytes());
        bytes.extend_from_slice(&payload);
    }
    fs::write(segment_path(&wal_path, 1), &bytes).unwrap();

    let store = Arc::new(Store::new(4));
    let wal = open(dir.path(), &store, |_| {});
    assert_eq!(totals(&store), (5.0, 13.0));
    // The untimed datum is at its receipt time, not at the other datums' time.
    let untimed_at = |store: &Store| {
        let key = store
            .list(Some("Test"), None, NOW)
            .into_iter()
            .find(|k| k.dimension("Host") == Some("h1"))
            .unwrap();
        let q = Query {
            key,
            unit: None,
            start: NOW.sub_millis(3_600_000),
            end: NOW.add_millis(60_000),
            period: Period::ONE_MINUTE,
            statistics: vec!["Sum".parse().unwrap()],
        };
        store
            .query(&q, NOW)
            .unwrap()
            .into_iter()
            .map(|dp| (dp.timestamp, dp.values[0].unwrap()))
            .collect::<Vec<_>>()
    };
    let expected = vec![
        (NOW.sub_millis(90_000).floor_to(60_000), 5.0),
        (NOW.sub_millis(30_000).floor_to(60_000), 1.0),
    ];
    assert_eq!(untimed_at(&store), expected);

    assert_eq!(push(&wal, request(1, 100.0)).unwrap(), 3);
    drop(wal);
    let segs = segments(&wal_path).unwrap();
    assert_eq!(
        segs.len(),
        2,
        "the new records start a segment of their own"
    );
    let current = fs::read(&segs[1].1).unwrap();
    assert_eq!(current[8..12], FORMAT_VERSION.to_le_bytes());
    let again = Arc::new(Store::new(4));
    let report = recover(
        dir.path(),
        &again,
        &mut crate::streams::Applied::default(),
        false,
    )
    .unwrap();
    assert_eq!(report.replayed, 3);
    assert_eq!(totals(&again), (6.0, 113.0));
    assert_eq!(untimed_at(&again), expected);
}

#[test]
fn every_fsync_mode_acknowledges_in_order() {
    for mode in [FsyncMode::Always, FsyncMode::Batch, FsyncMode::Never] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::new(4));
        let wal = open(dir.path(), &store, |o| {
            o.fsync = mode;
            o.batch_interval = Duration::from_millis(1);
        });
        let acks: Vec<u64> = (0..5)
            .map(|_| push(&wal, request(2, 1.0)).unwrap())
            .collect();
        assert_eq!(acks, [1, 2, 3, 4, 5], "{mode:?}");
        drop(wal);
        let again = Arc::new(Store::new(4));
        assert_eq!(
            recover(
                dir.path(),
                &again,
                &mut crate::streams::Applied::default(),
                false
            )
            .unwrap()
            .replayed,
            5,
            "{mode:?}"
        );
    }
}

#[test]
fn a_closed_log_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::new(4));
    let wal = open(dir.path(), &store, |_| {});
    wal.close();
    let req = request(1, 1.0);
    let payload = bytes::Bytes::from(req.encode_to_vec());
    let validated = validate_request(&payload, NOW, &Interner::new(100)).unwrap();
    let (ack, _rx) = oneshot::channel();
    assert_eq!(
        wal.submit(Job::new(validated, NOW, ack)),
        Err(Refused::Closed)
    );
}

/// Samples Thermostat makes itself go through the log like a request's: the call returns once
/// they are durable and applied, and they replay after a restart; a closed log refuses them.
#[test]
fn own_samples_are_logged_applied_and_replayed() {
    use thermostat_metrics::{Dimension, Observation, Resolution, Sample, SeriesKey, Unit};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::new(4));
    let wal = open(dir.path(), &store, |_| {});
    let key = SeriesKey::new("Test", "Own", vec![Dimension::new("Host", "h0")]);
    let observations: Vec<(SeriesKey, Observation<'_>)> = [3.0, 4.0]
        .iter()
        .map(|&v| {
            let o = Observation {
                timestamp: NOW.sub_millis(30_000),
                unit: Unit::None,
                resolution: Resolution::High,
                sample: Sample::Value(v),
            };
            (key.clone(), o)
        })
        .collect();
    let validated = thermostat_metrics::ObservationBatch::from_observations(&observations);
    assert_eq!(validated.samples, 2.0);
    let seq = wal
        .append_blocking(validated, NOW, Duration::from_secs(10))
        .unwrap();
    assert_eq!(seq, 1);
    assert_eq!(
        totals(&store),
        (2.0, 7.0),
        "applied before the call returns"
    );
    wal.close();
    let refused = wal.append_blocking(
        thermostat_metrics::ObservationBatch::from_observations(&observations),
        NOW,
        Duration::from_secs(10),
    );
    assert!(matches!(refused, Err(AppendError::Closed)), "{refused:?}");
    drop(wal);
    let again = Arc::new(Store::new(4));
    assert_eq!(
        recover(
            dir.path(),
            &again,
            &mut crate::streams::Applied::default(),
            false
        )
        .unwrap()
        .replayed,
        1
    );
    assert_eq!(totals(&again), (2.0, 7.0));
}
