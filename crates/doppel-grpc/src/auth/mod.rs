//! Authentication and authorisation: API keys with roles ([`api_keys`]), the role each
//! RPC needs ([`rpc_roles`]), per-key rate limits ([`key_rate_limits`]), and the tower
//! layer that checks them ([`auth_layer`]).

pub mod api_keys;
pub mod auth_layer;
pub mod key_rate_limits;
pub mod rpc_roles;

pub use api_keys::{ApiKeys, KeyRing, KeysFileError, Role, digest_hex};
pub use auth_layer::AuthLayer;
pub use key_rate_limits::{KeyRateLimiter, RateLimit};
