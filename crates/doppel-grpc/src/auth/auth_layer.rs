//! The tower layer that checks API keys before any handler runs: a key is taken from
//! `authorization: Bearer <key>` or `x-api-key: <key>`; a missing or unknown key is
//! UNAUTHENTICATED, a key whose role is too low PERMISSION_DENIED (see `rpc_roles`).
//! A known key over its rate limit is RESOURCE_EXHAUSTED (see `key_rate_limits`). The
//! caller's key id is logged (never the key).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tower::{Layer, Service};

use super::api_keys::ApiKeys;
use super::key_rate_limits::{KeyRateLimiter, RateLimit};
use super::rpc_roles::required_role;
use crate::audit_log::AuditKey;

/// Wraps the router so every call is authenticated and authorised (with no keys, every
/// call passes: a server without a keys file, which only listens on loopback unless told
/// otherwise).
#[derive(Clone, Debug)]
pub struct AuthLayer {
    keys: Option<Arc<ApiKeys>>,
    limiter: Option<Arc<KeyRateLimiter>>,
}

impl AuthLayer {
    /// A layer checking calls against `keys` (none: no checks), each key held to
    /// `limit` (none: no rate limit).
    pub fn new(keys: Option<Arc<ApiKeys>>, limit: Option<RateLimit>) -> Self {
        Self {
            keys,
            limiter: limit.map(|l| Arc::new(KeyRateLimiter::new(l))),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            keys: self.keys.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

/// The service produced by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    keys: Option<Arc<ApiKeys>>,
    limiter: Option<Arc<KeyRateLimiter>>,
}

/// The key a request presents, if any.
fn presented_key<B>(request: &http::Request<B>) -> Option<&str> {
    let headers = request.headers();
    if let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let mut parts = value.trim().splitn(2, ' ');
        if parts
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
        {
            return parts.next().map(str::trim).filter(|k| !k.is_empty());
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Checks one call: Ok with the caller's key id (none for open paths), or the status to
/// answer with the key id when the key was known.
/// A known key over its rate limit is refused before its role is checked, so refused
/// calls count against the limit too.
fn check<B>(
    keys: &ApiKeys,
    limiter: Option<&KeyRateLimiter>,
    request: &http::Request<B>,
) -> Result<Option<String>, (Status, Option<String>)> {
    let path = request.uri().path();
    let Some(needed) = required_role(path) else {
        return Ok(None);
    };
    let key = presented_key(request).ok_or_else(|| {
        (
            Status::unauthenticated(
                "no API key: send `authorization: Bearer <key>` or `x-api-key`",
            ),
            None,
        )
    })?;
    let (key_id, role) = keys
        .ring()
        .authenticate(key)
        .ok_or_else(|| (Status::unauthenticated("unknown API key"), None))?;
    if let Some(limiter) = limiter
        && let Err(wait) = limiter.try_acquire(&key_id, std::time::Instant::now())
    {
        return Err((limiter.refusal(&key_id, wait), Some(key_id)));
    }
    if role < needed {
        let status = Status::permission_denied(format!(
            "key `{key_id}` has role {}; {path} needs {}",
            role.name(),
            needed.name()
        ));
        return Err((status, Some(key_id)));
    }
    Ok(Some(key_id))
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some(keys) = &self.keys else {
            return Box::pin(self.inner.call(request));
        };
        match check(keys, self.limiter.as_deref(), &request) {
            Ok(key_id) => {
                if let Some(key_id) = &key_id {
                    tracing::debug!(auth.key_id = %key_id, "authenticated");
                }
                let future = self.inner.call(request);
                Box::pin(async move {
                    let mut response = future.await?;
                    // The audit log names the caller.
                    if let Some(key_id) = key_id {
                        response.extensions_mut().insert(AuditKey(key_id));
                    }
                    Ok(response)
                })
            }
            Err((status, key_id)) => {
                tracing::info!(rpc.method = %request.uri().path(), code = ?status.code(), "call refused");
                let mut response = status.into_http();
                if let Some(key_id) = key_id {
                    response.extensions_mut().insert(AuditKey(key_id));
                }
                Box::pin(std::future::ready(Ok(response)))
            }
        }
    }
}
