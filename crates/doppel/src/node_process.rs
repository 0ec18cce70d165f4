//! A `doppel serve --role all` child process for benchmarks that measure a node from
//! outside: its own memory (`/proc/<pid>/status`), its restart, its snapshot on disk.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tonic::transport::Channel;

/// How long a node may take to catch up with its store before the bench gives up.
const START_TIMEOUT: Duration = Duration::from_secs(3_600);

/// A running node; killed when dropped.
pub struct NodeProcess {
    child: Child,
    /// A channel to its public port.
    pub channel: Channel,
}

impl NodeProcess {
    /// Starts this binary as a single node over the embedded store in `dir` (snapshots in
    /// `dir/snapshots`, log in `dir/node.log`) and waits until it serves.
    pub async fn start(dir: &Path, build_threads: usize) -> anyhow::Result<Self> {
        Self::start_with(dir, build_threads, &[]).await
    }

    /// [`NodeProcess::start`] with more `serve` flags.
    pub async fn start_with(
        dir: &Path,
        build_threads: usize,
        flags: &[&str],
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .context("opening the node's log")?;
        let mut command = Command::new(std::env::current_exe().context("this binary")?);
        command
            .arg("serve")
            .args(["--role", "all", "--grace-seconds", "5"])
            .arg("--data-dir")
            .arg(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--build-threads", &build_threads.to_string()])
            .args(flags)
            // Warnings, and what event retention removed (the bench reads that line).
            .env("DOPPEL_LOG", "warn,doppel_node::event_retention=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
        // which is async-signal-safe. PR_SET_PDEATHSIG fires when the thread that forked
        // exits: this runs on a tokio worker thread, which lives as long as the bench's
        // runtime, so a killed bench does not leave a node building in the background.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().context("starting `doppel serve`")?;
        let addr = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        // The node binds its port once it has caught up with the store.
        let channel = loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "`doppel serve` exited with {status}; see {}",
                    dir.join("node.log").display()
                );
            }
            if let Ok(channel) = doppel_client::connect(&addr).await {
                break channel;
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                bail!("`doppel serve` did not start serving within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Ok(Self { child, channel })
    }

    /// A `/proc/<pid>/status` value in bytes (`VmRSS:`, `VmHWM:`).
    pub fn status_bytes(&self, key: &str) -> Option<u64> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(path).ok()?;
        let line = status.lines().find(|l| l.starts_with(key))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// Resets the node's peak-RSS mark to its current RSS (Linux: 5 → `clear_refs`).
    pub fn reset_peak_rss(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").is_ok()
    }

    /// Sends SIGTERM and waits for the node to drain and exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = libc::pid_t::try_from(self.child.id()).context("pid")?;
        // SAFETY: kill(2) with a pid this process spawned and still owns (not yet reaped).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("the node did not exit within 60 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
