//! Server streams of pages: sent from a spawned task through a bounded channel, so a slow
//! client holds a few pages and one that goes away stops the sending.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// Pages buffered ahead of a slow client.
const PAGES_IN_FLIGHT: usize = 4;

/// A server stream of pages.
pub type PageStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Streams `pages` through a bounded channel from a spawned task, so a slow client holds at
/// most [`PAGES_IN_FLIGHT`] encoded pages and one that goes away stops the sending.
pub fn stream_pages<T: Send + 'static>(pages: Vec<T>) -> PageStream<T> {
    let (tx, rx) = mpsc::channel(PAGES_IN_FLIGHT);
    tokio::spawn(async move {
        for page in pages {
            if tx.send(Ok(page)).await.is_err() {
                tracing::debug!("client went away; stream stopped");
                break;
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}
