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
//! There is no silent skip: without `redis-server` on `PATH`, `start` panics saying how
//! to install it.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NOT_FOUND: &str = "redis-server not found on PATH: install it (e.g. `apt-get install -y redis-server`) — these tests need a real Redis";
const READY_DEADLINE: Duration = Duration::from_secs(10);

/// A running `redis-server`, stopped when dropped.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    password: Option<String>,
    /// Serves TLS only (`rediss://`), with a self-signed certificate.
    tls: bool,
    child: Mutex<Option<Child>>,
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
        Self::launch(new_dir(), args, false)
    }

    /// Starts a server speaking TLS only, with a certificate for 127.0.0.1 signed
    /// by a CA made with the `openssl` command; its [`url`](Self::url) is
    /// `rediss://127.0.0.1:PORT/0`. Clients trust it through [`ca_cert`](Self::ca_cert)
    /// (e.g. `SSL_CERT_FILE`, which rustls-native-certs reads).
    pub fn start_tls() -> Self {
        let dir = new_dir();
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

    fn launch(dir: PathBuf, extra_args: Vec<String>, tls: bool) -> Self {
        // A free port can be taken by someone else between our probe and redis binding
        // it: try a few ports.
        let mut server = Self {
            port: 0,
            dir,
            extra_args,
            password: None,
            tls,
            child: Mutex::new(None),
        };
        let mut last_failure = String::new();
        for _ in 0..5 {
            server.port = free_port();
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
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if running and starts it again on the same port; waits for `PING`.
    pub fn restart(&self) {
        self.kill();
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(why) if Instant::now() > deadline => {
                    panic!(
                        "could not restart redis-server on port {}: {why}",
                        self.port
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
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
        let guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let child = guard.as_ref().expect("redis-server is not running");
        let status = Command::new("kill")
            .arg(sig)
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} failed");
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        if self.tls {
            cmd.arg("--port").arg("0").arg("--tls-port");
        } else {
            cmd.arg("--port");
        }
        cmd.arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{NOT_FOUND}"),
            Err(e) => return Err(format!("spawn: {e}")),
        };
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "redis-server exited with {status} (port {} taken?)",
                    self.port
                ));
            }
            if self.answers_ping() {
                *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer to PING on port {} within {READY_DEADLINE:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// A fresh temporary directory for one server.
fn new_dir() -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cachet-redis-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create the redis test directory");
    dir
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
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
