//! Client streams that go quiet: a stream opened and never finished would hold its
//! buffered records and its connection forever. Every client-stream read waits at most the
//! idle time for the next message; then the call ends with DEADLINE_EXCEEDED, what was
//! written before stays written, and the unfinished batch is dropped.

use std::time::Duration;

use tonic::{Status, Streaming};

/// How long a client stream may stay silent, by default.
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(60);

/// `idle`, or the default when zero.
pub fn or_default(idle: Duration) -> Duration {
    if idle.is_zero() {
        DEFAULT_STREAM_IDLE
    } else {
        idle
    }
}

/// The next message of `stream`, waiting at most `idle` (zero: the default).
pub async fn next_message<T>(
    stream: &mut Streaming<T>,
    idle: Duration,
) -> Result<Option<T>, Status> {
    let idle = or_default(idle);
    match tokio::time::timeout(idle, stream.message()).await {
        Ok(message) => message,
        Err(_) => Err(Status::deadline_exceeded(format!(
            "stream: no message for {} s (--stream-idle-seconds); what was acknowledged \
             before is kept, the unfinished batch is not: send it again (event ids make that \
             safe)",
            idle.as_secs()
        ))),
    }
}
