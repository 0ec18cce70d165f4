//! Issue 10: a long `RecordEvents` stream was cut by GOAWAY `too_many_data_frames`.
//!
//! h2 charges every small DATA frame that sits unread against a budget of half the
//! connection window; a client that sends one small message per frame (grpcio, grpc-go)
//! while the server is busy writing a batch crossed hyper's default. The server stalls
//! here on purpose (the stub waits before reading), on the same transport doppel serves
//! with ([`doppel_grpc::server::transport`]) and on tonic's default for contrast.

use std::time::Duration;

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::ingest_server::{Ingest, IngestServer};
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

/// Sent one message per DATA frame.
const EVENTS: u64 = 40_000;

/// An Ingest that, like a store write, stops reading for a moment before draining.
struct StallingIngest;

#[tonic::async_trait]
impl Ingest for StallingIngest {
    async fn record_events(
        &self,
        request: Request<Streaming<pb::Event>>,
    ) -> Result<Response<pb::WriteSummary>, Status> {
        let mut stream = request.into_inner();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut accepted = 0;
        while stream.message().await?.is_some() {
            accepted += 1;
        }
        Ok(Response::new(pb::WriteSummary {
            accepted,
            ..Default::default()
        }))
    }

    async fn upsert_customers(
        &self,
        _: Request<Streaming<pb::Customer>>,
    ) -> Result<Response<pb::WriteSummary>, Status> {
        Err(Status::unimplemented("stub"))
    }

    async fn upsert_items(
        &self,
        _: Request<Streaming<pb::Item>>,
    ) -> Result<Response<pb::WriteSummary>, Status> {
        Err(Status::unimplemented("stub"))
    }

    async fn get_customer(
        &self,
        _: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        Err(Status::unimplemented("stub"))
    }

    async fn delete_customer(
        &self,
        _: Request<pb::DeleteCustomerRequest>,
    ) -> Result<Response<pb::DeleteCustomerResponse>, Status> {
        Err(Status::unimplemented("stub"))
    }
}

/// Streams [`EVENTS`] small events, each flushed alone, to a stalling server built on
/// `transport`.
async fn stream_small_frames(mut transport: Server) -> Result<pb::WriteSummary, Status> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(
        transport
            .add_service(IngestServer::new(StallingIngest))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let channel = doppel_client::connect(&addr).await.expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for n in 0..EVENTS {
            let event = pb::Event {
                customer_id: format!("c{n}"),
                item_id: "i".into(),
                r#type: pb::EventType::View as i32,
                timestamp_ms: 1,
                ..Default::default()
            };
            if tx.send(event).await.is_err() {
                return;
            }
            // One message per DATA frame, as grpcio and grpc-go send them.
            tokio::task::yield_now().await;
        }
    });
    let answer = IngestClient::new(channel)
        .record_events(ReceiverStream::new(rx))
        .await
        .map(tonic::Response::into_inner);
    server.abort();
    answer
}

#[tokio::test]
async fn a_stalled_stream_of_small_frames_is_not_cut() {
    let summary = stream_small_frames(doppel_grpc::server::transport())
        .await
        .expect("the stream was cut");
    assert_eq!(summary.accepted, EVENTS);
}

#[tokio::test]
async fn tonics_default_windows_cut_the_same_stream() {
    // The contrast that makes the test above mean something: if h2 stops cutting such
    // streams, this fails and the window settings can be revisited.
    match stream_small_frames(Server::builder()).await {
        // GOAWAY `too_many_data_frames`: the client sees UNAVAILABLE or a broken pipe,
        // depending on where it was when the connection went.
        Err(status) => assert!(
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
            ),
            "{status:?}"
        ),
        Ok(summary) => panic!("not cut with default windows: {summary:?}"),
    }
}
