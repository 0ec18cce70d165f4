//! Real `redis-server` processes for tests: a standalone server, or a 3-master Redis
//! Cluster, each on free loopback ports in its own temp dir, killed on drop.
//!
//! Persistence is off (`--save '' --appendonly no`): tests need no durability. A missing
//! `redis-server` (or `redis-cli`) fails the test with a message saying what to install.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server or the cluster may take to come up.
const STARTUP: Duration = Duration::from_secs(20);

/// One `redis-server` process.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    cluster: bool,
    aof: bool,
    /// A TLS port beside the plaintext one, and its certificate, key and client CA.
    tls: Option<(u16, [PathBuf; 3])>,
    _tmp: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// A standalone server on a free port.
    pub fn standalone() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir for redis-server");
        let mut server = Self::spawn(free_port(false), tmp.path(), false);
        server._tmp = Some(tmp);
        server
    }

    /// A standalone server with the append-only file on and `appendfsync always`: what
    /// doppel needs so that no acknowledged write is lost when Redis is killed. (With
    /// `everysec`, Redis postpones the AOF write for up to 2 s while a slow fsync runs and
    /// still answers clients, so a kill in that window loses acknowledged writes: seen in
    /// CI on a busy disk.)
    pub fn standalone_durable() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir for redis-server");
        let mut server = Self {
            child: None,
            port: free_port(false),
            dir: tmp.path().to_owned(),
            cluster: false,
            aof: true,
            tls: None,
            _tmp: Some(tmp),
        };
        server.start();
        server
    }

    /// A standalone server that also serves TLS (`cert`, `key`, PEM) on a second port and
    /// requires client certificates signed by `client_ca` there; see
    /// [`RedisServer::tls_url`].
    pub fn standalone_tls(cert: &Path, key: &Path, client_ca: &Path) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir for redis-server");
        let port = free_port(false);
        let mut tls_port = free_port(false);
        while tls_port == port {
            tls_port = free_port(false);
        }
        let mut server = Self {
            child: None,
            port,
            dir: tmp.path().to_owned(),
            cluster: false,
            aof: false,
            tls: Some((
                tls_port,
                [cert.to_owned(), key.to_owned(), client_ca.to_owned()],
            )),
            _tmp: Some(tmp),
        };
        server.start();
        server
    }

    /// `rediss://localhost:PORT` of a [`RedisServer::standalone_tls`] server.
    pub fn tls_url(&self) -> String {
        let (port, _) = self.tls.as_ref().expect("a TLS server");
        format!("rediss://localhost:{port}")
    }

    fn spawn(port: u16, dir: &Path, cluster: bool) -> Self {
        let mut server = Self {
            child: None,
            port,
            dir: dir.to_owned(),
            cluster,
            aof: false,
            tls: None,
            _tmp: None,
        };
        server.start();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the process (again) on the same port and waits until it answers `PING`.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let log = std::fs::File::create(self.dir.join(format!("redis-{}.log", self.port)))
            .expect("redis log file");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", if self.aof { "yes" } else { "no" }])
            .args([
                "--appendfsync",
                if self.aof { "always" } else { "everysec" },
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some((tls_port, [cert, key, ca])) = &self.tls {
            cmd.args(["--tls-port", &tls_port.to_string()])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .arg("--tls-ca-cert-file")
                .arg(ca)
                .args(["--tls-auth-clients", "yes"]);
        }
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes"])
                .args([
                    "--cluster-config-file",
                    &format!("nodes-{}.conf", self.port),
                ])
                .args(["--cluster-node-timeout", "2000"]);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start `redis-server` ({e}): the Redis store tests need a real \
                 redis-server on PATH (Debian/Ubuntu: apt-get install -y redis-server)"
            )
        });
        self.child = Some(child);
        wait_for(
            STARTUP,
            &format!("redis-server on port {}", self.port),
            || ping(self.port),
        );
    }

    /// Kills the process (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of three masters, no replicas.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    _tmp: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them with `redis-cli --cluster create`
    /// and waits until every node reports `cluster_state:ok`.
    pub fn three_masters() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir for redis cluster");
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 3 {
            let port = free_port(true);
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        let nodes: Vec<RedisServer> = ports
            .iter()
            .map(|&port| RedisServer::spawn(port, tmp.path(), true))
            .collect();
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = create.output().unwrap_or_else(|e| {
            panic!("cannot run `redis-cli` ({e}): install redis-tools / redis-server")
        });
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for node in &nodes {
            wait_for(
                STARTUP,
                &format!("cluster_state:ok on {}", node.port),
                || {
                    command(node.port, &["CLUSTER", "INFO"])
                        .is_some_and(|info| info.contains("cluster_state:ok"))
                },
            );
        }
        Self { nodes, _tmp: tmp }
    }

    /// The number of keys each master holds (`DBSIZE`), in node order.
    pub fn key_counts(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|node| {
                command(node.port, &["DBSIZE"])
                    .and_then(|reply| reply.trim().strip_prefix(':')?.parse().ok())
                    .unwrap_or_else(|| panic!("DBSIZE on port {}", node.port))
            })
            .collect()
    }

    /// Kills master `i` (SIGKILL); its slots stay unserved (no replicas).
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// A port that was free a moment ago; for cluster nodes its bus port (+10000) too.
fn free_port(cluster: bool) -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if !cluster {
            return port;
        }
        if let Some(bus) = port.checked_add(10_000)
            && TcpListener::bind(("127.0.0.1", bus)).is_ok()
        {
            return port;
        }
    }
}

fn wait_for(timeout: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ping(port: u16) -> bool {
    command(port, &["PING"]).is_some_and(|reply| reply.starts_with("+PONG"))
}

/// Sends one command in RESP and returns the raw reply (one read), if the server answers.
fn command(port: u16, args: &[&str]) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).ok()?;
    let mut buf = vec![0u8; 8192];
    let n = stream.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}
