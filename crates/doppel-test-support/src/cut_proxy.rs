//! A TCP proxy a test can cut: a network partition between one process and a server
//! (say, one shard node and Redis) while everything else keeps its links.
//!
//! Cutting is a black hole, the nastier kind of partition: connections stay open and new
//! ones are accepted, but no byte crosses in either direction until the link is restored
//! (bytes read meanwhile are held, then delivered). A client learns of it only from its
//! own timeouts.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy on `127.0.0.1:0` to `upstream`; stops when dropped.
pub struct CutProxy {
    /// Where clients connect instead of the upstream.
    pub addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Waits while the link is cut; false once the proxy is gone.
async fn until_linked(cut: &mut watch::Receiver<bool>) -> bool {
    cut.wait_for(|cut| !*cut).await.is_ok()
}

/// Copies `from` → `to`, holding bytes while the link is cut.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !until_linked(&mut cut).await {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !until_linked(&mut cut).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl CutProxy {
    /// Starts forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (cut, cut_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let cut = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, cut.clone()),
                        pipe(server_read, client_write, cut),
                    );
                });
            }
        });
        Self { addr, cut, task }
    }

    /// Cuts the link (a black hole) until [`CutProxy::restore`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Restores the link: held bytes flow again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
