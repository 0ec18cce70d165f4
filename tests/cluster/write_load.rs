//! Writes through a router while a test breaks something: one customer upsert after another,
//! each with a client deadline, recording what was acknowledged and what was refused, so the
//! test can check that refusals say UNAVAILABLE and that no acknowledged write is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use parking_lot::Mutex;
use tonic::transport::Channel;

/// A running writer.
pub struct WriteLoad {
    acked: Arc<Mutex<Vec<String>>>,
    refused: Arc<Mutex<Vec<(tonic::Code, String)>>>,
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// What a write load saw.
pub struct Outcome {
    pub acked: Vec<String>,
    pub refused: Vec<(tonic::Code, String)>,
}

fn customer(id: &str) -> pb::Customer {
    pb::Customer {
        id: id.to_owned(),
        consent: Some(pb::Consent {
            ads_personalization: true,
            onsite_personalization: true,
        }),
        ..Default::default()
    }
}

impl WriteLoad {
    /// Starts writing customers `<prefix>-1`, `<prefix>-2`, … through `channel`, each call
    /// with `deadline`; a refusal must come before it (never a hang).
    pub fn start(channel: Channel, prefix: &str, deadline: Duration) -> Self {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicBool::new(true));
        let (a, r, run, prefix) = (
            acked.clone(),
            refused.clone(),
            running.clone(),
            prefix.to_owned(),
        );
        let task = tokio::spawn(async move {
            let mut client = IngestClient::new(channel);
            let mut n = 0u64;
            while run.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("{prefix}-{n}");
                let mut request = tonic::Request::new(tokio_stream::iter(vec![customer(&id)]));
                request.set_timeout(deadline);
                let started = tokio::time::Instant::now();
                match client.upsert_customers(request).await {
                    Ok(s) if s.get_ref().accepted == 1 => a.lock().push(id),
                    Ok(s) => panic!("unexpected summary {:?}", s.into_inner()),
                    Err(status) => {
                        assert!(
                            started.elapsed() <= deadline + Duration::from_millis(500),
                            "`{id}` hung: {status:?}"
                        );
                        r.lock().push((status.code(), status.message().to_owned()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Self {
            acked,
            refused,
            running,
            task,
        }
    }

    /// Waits until `more` further writes are acknowledged, failing with `what` after
    /// `within`.
    pub async fn wait_for_more(&self, more: usize, within: Duration, what: &str) {
        let from = self.acked.lock().len();
        let deadline = tokio::time::Instant::now() + within;
        while self.acked.lock().len() < from + more {
            assert!(
                !self.task.is_finished(),
                "the writer stopped early: one of its checks failed (see its panic above)"
            );
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops writing and answers what happened.
    pub async fn stop(self) -> Outcome {
        self.running.store(false, Ordering::Relaxed);
        self.task.await.expect("writer");
        Outcome {
            acked: self.acked.lock().clone(),
            refused: self.refused.lock().clone(),
        }
    }
}

impl Outcome {
    /// There were refusals, and every one said UNAVAILABLE, or, with
    /// `client_deadline_too`, was the client's own deadline passing (tonic reports that as
    /// CANCELLED "Timeout expired", or DEADLINE_EXCEEDED): never UNKNOWN or INTERNAL.
    pub fn assert_refusals_unavailable(&self, client_deadline_too: bool) {
        assert!(
            !self.refused.is_empty(),
            "some writes must have been refused"
        );
        assert!(
            self.refused.iter().all(|(c, _)| match c {
                tonic::Code::Unavailable => true,
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => client_deadline_too,
                _ => false,
            }),
            "refused writes must say UNAVAILABLE: {:?}",
            self.refused
        );
    }

    /// Every acknowledged write is readable through `channel`.
    pub async fn assert_none_lost(&self, channel: Channel) {
        let mut client = IngestClient::new(channel);
        for id in &self.acked {
            let found = client
                .get_customer(pb::GetCustomerRequest {
                    customer_id: id.clone(),
                })
                .await;
            assert!(found.is_ok(), "acknowledged `{id}` lost: {found:?}");
        }
    }
}
