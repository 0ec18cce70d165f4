//! A client stream that goes quiet ends with DEADLINE_EXCEEDED after the idle time, and
//! what was acknowledged before stays; the connection serves other calls meanwhile.

use std::time::{Duration, Instant};

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::fixture::loaded_with;

#[tokio::test]
async fn a_silent_client_stream_ends_after_the_idle_time() {
    let config = doppel_grpc::NodeConfig {
        stream_idle: Duration::from_secs(1),
        ..Default::default()
    };
    let fx = loaded_with(
        doppel_test_support::small_base(),
        config,
        doppel_grpc::ServeOptions::default(),
    )
    .await;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::Customer>(4);
    let customer = |id: &str| pb::Customer {
        id: id.to_owned(),
        ..Default::default()
    };
    tx.send(customer("idle-1")).await.expect("send");
    let started = Instant::now();
    let mut client = IngestClient::new(fx.channel());
    let call = tokio::spawn(async move {
        client
            .upsert_customers(ReceiverStream::new(rx))
            .await
            .map(tonic::Response::into_inner)
    });
    // Other calls are served while the stream stalls.
    let got = IngestClient::new(fx.channel())
        .get_customer(pb::GetCustomerRequest {
            customer_id: fx.data.customers[0].id.clone(),
        })
        .await;
    assert!(got.is_ok(), "{got:?}");
    let status = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the stalled call ended")
        .expect("task")
        .expect_err("idle");
    let waited = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().starts_with("stream"), "{status:?}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    drop(tx);
}
