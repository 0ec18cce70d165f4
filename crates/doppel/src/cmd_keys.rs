//! `doppel keys new`: a fresh API key, and the keys-file line for it. Also the server's
//! side: loading the keys file and re-reading it on SIGHUP or when it changes.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use doppel_grpc::auth::{ApiKeys, KeysFileError, Role, digest_hex};

/// How often the keys file's modification time is checked.
const KEYS_FILE_POLL: Duration = Duration::from_secs(2);
/// Random bytes in a key (192 bits).
const KEY_BYTES: usize = 24;

/// `doppel keys …`.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Print a new random key on stdout and its keys-file line (`ID ROLE SHA256HEX`) on
    /// stderr; append the line to the keys file, give the key to the client.
    New(NewKeyArgs),
}

/// Flags of `doppel keys new`.
#[derive(Args, Debug)]
pub struct NewKeyArgs {
    /// The key's id, named in logs (1..=64 of `[A-Za-z0-9._-]`).
    #[arg(long)]
    pub id: String,
    /// `read`, `write` or `admin`.
    #[arg(long)]
    pub role: String,
}

/// Runs a `keys` command.
pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    let KeysCommand::New(NewKeyArgs { id, role }) = command;
    let (key, line) = new_key(&id, &role)?;
    println!("{key}");
    eprintln!("{line}");
    Ok(())
}

/// A fresh random key (192 bits from the OS) and its keys-file line, checked by the parser
/// the server uses.
fn new_key(id: &str, role: &str) -> anyhow::Result<(String, String)> {
    let role =
        Role::parse(role).ok_or_else(|| anyhow::anyhow!("--role must be read, write or admin"))?;
    let mut bytes = [0u8; KEY_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let key: String = std::iter::once("dpl_".to_owned())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect();
    let line = format!("{id} {} {}", role.name(), digest_hex(&key));
    doppel_grpc::auth::KeyRing::parse("the new line", &line)?;
    Ok((key, line))
}

/// Loads the keys file and keeps it current: re-read on SIGHUP and whenever its
/// modification time changes. A bad file at start is an error (bad config); later, a bad
/// file is logged and the keys in force stay.
pub fn load_and_watch(path: &Path) -> Result<Arc<ApiKeys>, KeysFileError> {
    let keys = ApiKeys::load(path)?;
    let watched = Arc::clone(&keys);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(KEYS_FILE_POLL);
        loop {
            #[cfg(unix)]
            let hup = async {
                match hangup.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup = std::future::pending::<()>();
            tokio::select! {
                () = hup => {
                    tracing::info!("SIGHUP: re-reading the API keys file");
                    watched.reload();
                }
                _ = tick.tick() => {
                    watched.reload_if_changed();
                }
            }
        }
    });
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_authenticates_with_its_line_and_is_never_in_it() {
        let (key, line) = new_key("ci", "write").expect("new key");
        assert!(key.len() >= 4 + 2 * 16, "at least 128 bits: {key}");
        assert!(!line.contains(&key));
        let ring = doppel_grpc::auth::KeyRing::parse("keys", &line).expect("parse");
        assert_eq!(
            ring.authenticate(&key),
            Some(("ci".to_owned(), Role::Write))
        );
        let (other, _) = new_key("ci", "write").expect("new key");
        assert_ne!(key, other);
        assert!(new_key("ci", "root").is_err());
        assert!(new_key("bad id", "read").is_err());
    }
}
