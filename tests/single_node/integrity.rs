//! Regression tests of issue 10 (data loss and integrity), each against a real server:
//! hostile version names, versions a crash left unfinished, DeleteVersion, event times,
//! duplicate ids and overflowing vectors in imports, and snapshots after fold-in.

use std::time::Duration;

use doppel_grpc::NodeConfig;
use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_store::{EmbeddedStore, Store};
use doppel_test_support::{TestServer, load_base, small_base, upload_base};
use doppel_types::{Entity, VersionInfo, VersionSource, VersionState};
use tonic::Code;
use tonic::transport::Channel;

fn admin(channel: &Channel) -> ModelAdminClient<Channel> {
    ModelAdminClient::new(channel.clone())
}

fn assert_status<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: Code,
    needle: &str,
    case: &str,
) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), code, "{case}: {status:?}");
    assert!(
        status.message().contains(needle),
        "{case}: `{}` does not say `{needle}`",
        status.message()
    );
}

fn import_status(result: doppel_client::Result<pb::ImportSummary>) -> Result<(), tonic::Status> {
    match result {
        Ok(_) => Ok(()),
        Err(doppel_client::Error::Rpc { status, .. }) => Err(*status),
        Err(e) => Err(tonic::Status::unknown(e.to_string())),
    }
}

async fn describe(channel: &Channel, version: &str) -> pb::DescribeVersionResponse {
    admin(channel)
        .describe_version(pb::DescribeVersionRequest {
            model_version: version.to_owned(),
        })
        .await
        .expect("describe")
        .into_inner()
}

async fn delete(
    channel: &Channel,
    version: &str,
) -> Result<pb::DeleteVersionResponse, tonic::Status> {
    admin(channel)
        .delete_version(pb::DeleteVersionRequest {
            model_version: version.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn activate(channel: &Channel, version: &str) -> Result<(), tonic::Status> {
    admin(channel)
        .activate_version(pb::ActivateVersionRequest {
            model_version: version.to_owned(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn version_names_that_are_paths_are_refused_and_the_data_dir_survives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = NodeConfig {
        snapshot_dir: Some(dir.path().join("snapshots")),
        ..NodeConfig::default()
    };
    let server = TestServer::start_with(dir.path(), config.clone()).await;
    let data = small_base();
    load_base(&server.channel, &data, "v1").await;
    activate(&server.channel, "v1").await.expect("activate v1");
    let ch = server.channel.clone();
    for bad in ["..", ".", ".hidden", "-v", "a/b"] {
        let imported = doppel_client::import_vectors(
            ch.clone(),
            bad,
            16,
            &data.customer_vectors[..10],
            &data.item_vectors[..10],
        )
        .await;
        assert_status(
            import_status(imported),
            Code::InvalidArgument,
            "model_version",
            &format!("import {bad:?}"),
        );
        let trained = admin(&ch)
            .train(pb::TrainRequest {
                model_version: bad.to_owned(),
                ..Default::default()
            })
            .await;
        assert_status(
            trained.map(|_| ()),
            Code::InvalidArgument,
            "model_version",
            &format!("train {bad:?}"),
        );
    }
    // Dotted names are fine, and two of them no longer share a temporary directory.
    doppel_client::import_vectors(
        ch.clone(),
        "v1.2",
        16,
        &data.customer_vectors,
        &data.item_vectors,
    )
    .await
    .expect("import v1.2");
    assert!(
        dir.path().join("doppel.redb").exists(),
        "the store file is gone"
    );
    assert!(dir.path().join("snapshots/v1").exists());
    assert!(dir.path().join("snapshots/v1.2").exists());
    server.stop().await;

    let server = TestServer::start_with(dir.path(), config).await;
    let versions = admin(&server.channel)
        .list_versions(pb::ListVersionsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(versions.active_version, "v1");
    IngestClient::new(server.channel.clone())
        .get_customer(pb::GetCustomerRequest {
            customer_id: data.customers[0].id.clone(),
        })
        .await
        .expect("customers survive");
    server.stop().await;
}

/// What `kill -9` leaves behind, written straight into the store: a training run cut off
/// before its vectors were stored, an import cut off mid-stream, and an index build cut
/// off after every vector was stored.
async fn crashed_store(dir: &std::path::Path, data: &doppel_synth::SynthData) {
    let store = EmbeddedStore::open(dir).expect("store");
    let version = |name: &str, state, customers, items| VersionInfo {
        version: name.to_owned(),
        dim: 16,
        source: VersionSource::Imported,
        state,
        created_ms: 1,
        customer_count: customers,
        item_count: items,
        ..Default::default()
    };
    store
        .put_version(version("trained-cut", VersionState::Building, 0, 0))
        .await
        .expect("put");
    store
        .put_version(version("import-cut", VersionState::Staging, 0, 0))
        .await
        .expect("put");
    store
        .put_vectors(
            "import-cut",
            Entity::Customer,
            data.customer_vectors[..5].to_vec(),
        )
        .await
        .expect("vectors");
    let (c, i) = (data.customer_vectors.len(), data.item_vectors.len());
    store
        .put_version(version(
            "build-cut",
            VersionState::Building,
            c as u64,
            i as u64,
        ))
        .await
        .expect("put");
    store
        .put_vectors("build-cut", Entity::Customer, data.customer_vectors.clone())
        .await
        .expect("vectors");
    store
        .put_vectors("build-cut", Entity::Item, data.item_vectors.clone())
        .await
        .expect("vectors");
}

#[tokio::test]
async fn versions_a_crash_left_unfinished_are_failed_or_resumed_and_can_be_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = small_base();
    crashed_store(dir.path(), &data).await;
    let server = TestServer::start(dir.path()).await;
    upload_base(&server.channel, &data).await;
    let ch = server.channel.clone();

    for cut in ["trained-cut", "import-cut"] {
        let d = describe(&ch, cut).await;
        let info = d.info.expect("info");
        assert_eq!(info.state, "failed", "{cut}");
        assert!(
            info.params.contains_key("failure_reason"),
            "{cut}: {info:?}"
        );
        assert!(!d.building);
        assert_status(
            activate(&ch, cut).await,
            Code::FailedPrecondition,
            "failed",
            cut,
        );
    }
    // The resumed build finishes and the version becomes activatable.
    let mut state = String::new();
    for _ in 0..600 {
        state = describe(&ch, "build-cut").await.info.expect("info").state;
        if state != "building" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "ready");
    activate(&ch, "build-cut")
        .await
        .expect("activate the resumed version");

    // A failed name is reused once deleted; the active version cannot be deleted.
    let deleted = delete(&ch, "import-cut").await.expect("delete");
    assert_eq!(deleted.state, "failed");
    assert_status(
        delete(&ch, "import-cut").await,
        Code::NotFound,
        "import-cut",
        "twice",
    );
    doppel_client::import_vectors(
        ch.clone(),
        "import-cut",
        16,
        &data.customer_vectors,
        &data.item_vectors,
    )
    .await
    .expect("the name is free again");
    assert_status(
        delete(&ch, "build-cut").await,
        Code::FailedPrecondition,
        "active",
        "active",
    );
    activate(&ch, "import-cut").await.expect("activate");
    assert_status(
        delete(&ch, "build-cut").await,
        Code::FailedPrecondition,
        "rollback",
        "rollback target",
    );
    server.stop().await;
}

#[tokio::test]
async fn a_version_without_customers_or_items_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let data = small_base();
    upload_base(&server.channel, &data).await;
    let ch = server.channel.clone();
    let no_items =
        doppel_client::import_vectors(ch.clone(), "no-items", 16, &data.customer_vectors, &[])
            .await;
    assert_status(
        import_status(no_items),
        Code::FailedPrecondition,
        "no item vectors",
        "no items",
    );
    let no_customers =
        doppel_client::import_vectors(ch.clone(), "no-customers", 16, &[], &data.item_vectors)
            .await;
    assert_status(
        import_status(no_customers),
        Code::FailedPrecondition,
        "no customer vectors",
        "no customers",
    );
    assert_status(
        activate(&ch, "no-items").await,
        Code::FailedPrecondition,
        "failed",
        "activate a refused import",
    );
    server.stop().await;
}

#[tokio::test]
async fn imports_refuse_duplicate_ids_and_overflowing_vectors_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let data = small_base();
    upload_base(&server.channel, &data).await;
    let ch = server.channel.clone();

    let mut customers = data.customer_vectors[..100].to_vec();
    customers.push(customers[7].clone());
    let duplicated =
        doppel_client::import_vectors(ch.clone(), "dup", 16, &customers, &data.item_vectors).await;
    assert_status(
        import_status(duplicated),
        Code::InvalidArgument,
        "ids[100]",
        "duplicate id",
    );

    let mut customers = data.customer_vectors[..100].to_vec();
    customers[3].1 = vec![3e38; 16];
    let overflowing =
        doppel_client::import_vectors(ch.clone(), "huge", 16, &customers, &data.item_vectors).await;
    let status = import_status(overflowing).expect_err("overflow");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("values[row 3") && status.message().contains("overflow"),
        "{status:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn event_times_are_bounded_and_one_outlier_does_not_ruin_training() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    // A log that ended years ago (like a historical data set).
    let mut data = small_base();
    for e in &mut data.events {
        e.timestamp_ms -= 10 * 365 * 86_400_000;
    }
    upload_base(&server.channel, &data).await;
    let ch = server.channel.clone();
    let event = |timestamp_ms: i64| pb::Event {
        customer_id: data.customers[0].id.clone(),
        item_id: data.items[0].id.clone(),
        r#type: pb::EventType::Purchase as i32,
        timestamp_ms,
        quantity: 1,
        ..Default::default()
    };
    let now = doppel_types::clock::now_ms();
    let summary = IngestClient::new(ch.clone())
        .record_events(tokio_stream::iter(vec![
            event(32_503_680_000_000),
            event(i64::MAX),
            event(600_000_000_000),
            event(now + 2 * 86_400_000),
            event(now + 23 * 3_600_000),
        ]))
        .await
        .expect("record")
        .into_inner();
    assert_eq!((summary.accepted, summary.rejected), (1, 4), "{summary:?}");
    assert!(
        summary
            .errors
            .iter()
            .all(|e| e.field == "timestamp_ms" && e.reason.contains("1990")),
        "{summary:?}"
    );
    // The accepted event lies ten years past the rest of the log: measured from the newest
    // event, decay would wipe out everyone else; training measures it to a quantile of
    // the log, so everyone keeps a vector.
    let done = doppel_client::train(
        ch.clone(),
        pb::TrainRequest {
            model_version: "robust".into(),
            factors: Some(8),
            iterations: Some(3),
            ..Default::default()
        },
        |_| {},
    )
    .await
    .expect("train");
    let buyers: std::collections::HashSet<&str> =
        data.events.iter().map(|e| e.customer_id.as_str()).collect();
    assert!(
        done.customers as usize >= buyers.len() * 9 / 10,
        "{} customers of {}",
        done.customers,
        buyers.len()
    );
    server.stop().await;
}

#[tokio::test]
async fn import_build_seconds_do_not_count_an_idle_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let data = small_base();
    upload_base(&server.channel, &data).await;
    let chunk = |entity: pb::Entity, rows: &[(String, Vec<f32>)]| pb::EmbeddingChunk {
        model_version: "slow".into(),
        entity: entity as i32,
        dim: 16,
        ids: rows.iter().map(|(id, _)| id.clone()).collect(),
        values: rows.iter().flat_map(|(_, v)| v.iter().copied()).collect(),
        ..Default::default()
    };
    let chunks = vec![
        chunk(pb::Entity::Customer, &data.customer_vectors),
        chunk(pb::Entity::Item, &data.item_vectors),
    ];
    let idle = Duration::from_secs(3);
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        for chunk in chunks {
            tokio::time::sleep(idle / 2).await;
            let _ = tx.send(chunk).await;
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let summary = admin(&server.channel)
        .import_embeddings(stream)
        .await
        .expect("import")
        .into_inner();
    assert!(
        summary.build_seconds < idle.as_secs_f64(),
        "build_seconds {} counts the idle stream",
        summary.build_seconds
    );
    server.stop().await;
}

#[tokio::test]
async fn fold_in_does_not_leave_the_active_version_without_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshots = dir.path().join("snapshots");
    let config = NodeConfig {
        snapshot_dir: Some(snapshots.clone()),
        snapshot_refresh: Duration::from_millis(100),
        ..NodeConfig::default()
    };
    let server = TestServer::start_with(dir.path(), config.clone()).await;
    let data = small_base();
    upload_base(&server.channel, &data).await;
    let ch = server.channel.clone();
    doppel_client::train(
        ch.clone(),
        pb::TrainRequest {
            model_version: "t1".into(),
            factors: Some(8),
            iterations: Some(3),
            ..Default::default()
        },
        |_| {},
    )
    .await
    .expect("train");
    activate(&ch, "t1").await.expect("activate");
    let active = snapshots.join("t1");
    assert!(active.exists());
    // New events fold the customer in; its snapshot is stale and comes back rewritten.
    let summary = IngestClient::new(ch.clone())
        .record_events(tokio_stream::iter(vec![pb::Event {
            customer_id: data.customers[0].id.clone(),
            item_id: data.items[1].id.clone(),
            r#type: pb::EventType::Purchase as i32,
            timestamp_ms: doppel_types::clock::now_ms() - 1_000,
            quantity: 1,
            ..Default::default()
        }]))
        .await
        .expect("record")
        .into_inner();
    assert_eq!(summary.accepted, 1);
    let mut back = false;
    for _ in 0..200 {
        if active.join("manifest.txt").exists() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "the active version's snapshot did not come back");
    server.stop().await;
    let server = TestServer::start_with(dir.path(), config).await;
    let index = admin(&server.channel)
        .describe_index(pb::DescribeIndexRequest::default())
        .await
        .expect("describe")
        .into_inner();
    assert!(index.loaded_from_snapshot, "the restart rebuilt");
    server.stop().await;
}
