//! Authentication and authorisation: API keys with roles ([`api_keys`]), the role each
//! RPC needs ([`rpc_roles`]), and the tower layer that checks them ([`auth_layer`]).

pub mod api_keys;
pub mod auth_layer;
pub mod rpc_roles;

pub use api_keys::{ApiKeys, KeyRing, KeysFileError, Role, digest_hex};
pub use auth_layer::AuthLayer;
