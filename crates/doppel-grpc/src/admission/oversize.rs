//! Oversize messages answer RESOURCE_EXHAUSTED, gRPC's code for a size limit, instead of
//! the OUT_OF_RANGE tonic's codec reports ("decoded/encoded message length too large").
//! The status can arrive in the response headers (trailers-only answers) or in the
//! trailers of a stream; the admission layer rewrites both with [`rewrite`].

use http::HeaderMap;
use tonic::{Code, Status};

/// Rewrites `headers` in place when they carry a size-limit OUT_OF_RANGE.
pub(crate) fn rewrite(headers: &mut HeaderMap) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let too_large =
        status.code() == Code::OutOfRange && status.message().contains("message length too large");
    if !too_large {
        return;
    }
    let message = status
        .message()
        .trim_start_matches("Error, ")
        .replace("length too large", "too large");
    let replacement = Status::resource_exhausted(message);
    headers.remove("grpc-status");
    headers.remove("grpc-message");
    if replacement.add_header(headers).is_err() {
        tracing::warn!("could not rewrite an oversize-message status");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_size_limit_status_is_rewritten() {
        let mut headers = HeaderMap::new();
        Status::out_of_range(
            "Error, decoded message length too large: found 20000000 bytes, the limit is: 16777216 bytes",
        )
        .add_header(&mut headers)
        .expect("header");
        rewrite(&mut headers);
        let status = Status::from_header_map(&headers).expect("a status");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status
                .message()
                .starts_with("decoded message too large: found 20000000")
        );

        let mut other = HeaderMap::new();
        Status::out_of_range("page beyond the end")
            .add_header(&mut other)
            .expect("header");
        rewrite(&mut other);
        let status = Status::from_header_map(&other).expect("a status");
        assert_eq!(status.code(), Code::OutOfRange);
    }
}
