//! A `doppel serve` child process on loopback ports, its log in a file, killed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One `doppel serve` process.
pub struct DoppelProcess {
    child: Child,
    name: String,
    log: PathBuf,
}

impl DoppelProcess {
    /// Starts `doppel serve` with `args`, logging to `<dir>/<name>.log`.
    pub fn serve(name: &str, dir: &Path, args: &[String]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_doppel"))
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn doppel serve");
        Self {
            child,
            name: name.to_owned(),
            log,
        }
    }

    /// Stops the process where it is (SIGSTOP): no thread runs, no timer fires, its
    /// sockets stay open.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) with our own child's pid; it takes no pointers.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "signal {signal} to {}", self.name);
    }

    /// Waits up to `patience` for the process to exit; its status, or `None` if it runs on.
    pub fn wait_exit(&mut self, patience: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The last lines of the process's log, for a failure message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!("--- {} ---\n{}", self.name, lines[from..].join("\n"))
    }
}

impl Drop for DoppelProcess {
    fn drop(&mut self) {
        self.resume_quietly();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DoppelProcess {
    fn resume_quietly(&self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: as in `signal`; a process that already exited makes it fail harmlessly.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

/// A loopback address with a port free right now.
pub fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").to_string()
}
