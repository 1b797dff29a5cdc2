//! A DynamoDB emulator for tests (moto's server, from PyPI's `moto[server]`), on a free
//! loopback port, in a temporary directory.
//!
//! Shared by the tests of several crates:
//! `#[path = "../../tests/support/dynamodb_server.rs"] mod dynamodb_server;` from
//! `cache-backends/tests/`, or `mod support;` (with `pub mod dynamodb_server;`) from the
//! root `tests/`. Standard library only.
//!
//! ```ignore
//! let server = DynamoServer::start();
//! let endpoint = server.endpoint();   // http://127.0.0.1:PORT
//! server.kill();                      // gone: requests fail
//! server.restart();                   // back on the same port, empty (no persistence)
//! let checked = DynamoServer::start_with_auth(); // only `checked.credentials()` sign
//! ```
//!
//! Tests talk to it with the static test credentials [`TEST_ACCESS_KEY`] /
//! [`TEST_SECRET_KEY`] and region [`TEST_REGION`], never through the default AWS chain,
//! and the server and its children run with `AWS_EC2_METADATA_DISABLED=true`: nothing
//! here ever reaches an address but 127.0.0.1.
//!
//! There is no silent skip: without `moto_server` on `PATH`, `start` panics saying how
//! to install it.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NOT_FOUND: &str = "moto_server not found on PATH: install it (e.g. `pip install 'moto[server]'`) — these tests need a DynamoDB emulator";
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// The access key tests sign with (any key works on a server without auth).
pub const TEST_ACCESS_KEY: &str = "AKIDCACHETTEST";
/// The secret key tests sign with.
pub const TEST_SECRET_KEY: &str = "cachet-test-secret";
/// The region tests name.
pub const TEST_REGION: &str = "eu-west-1";

/// A running emulator, stopped when dropped.
pub struct DynamoServer {
    port: u16,
    dir: PathBuf,
    auth: bool,
    credentials: (String, String),
    child: Mutex<Option<Child>>,
}

impl DynamoServer {
    /// Starts an emulator that accepts any credentials.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Starts an emulator that checks signatures (moto's IAM mode): only the access key
    /// it made for the test ([`credentials`](Self::credentials)) is accepted, with
    /// permission for every DynamoDB action.
    pub fn start_with_auth() -> Self {
        let mut server = Self::launch(true);
        server.credentials = server.make_access_key();
        server
    }

    fn launch(auth: bool) -> Self {
        let mut server = Self {
            port: 0,
            dir: new_dir(),
            auth,
            credentials: (TEST_ACCESS_KEY.to_owned(), TEST_SECRET_KEY.to_owned()),
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
        panic!("could not start moto_server: {last_failure}");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The access key id and secret that sign for this server.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.credentials.0, &self.credentials.1)
    }

    /// Stops the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if running and starts it again on the same port, empty.
    pub fn restart(&self) {
        self.kill();
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(why) if Instant::now() > deadline => {
                    panic!("could not restart moto_server on port {}: {why}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        let mut cmd = Command::new("moto_server");
        cmd.arg("-H")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .current_dir(&self.dir)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.auth {
            // The first three requests (the test's IAM user, policy and key) go
            // unchecked; every later one must be signed by a key moto knows.
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
        }
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{NOT_FOUND}"),
            Err(e) => return Err(format!("spawn: {e}")),
        };
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "moto_server exited with {status} (port {} taken?)",
                    self.port
                ));
            }
            if answers_http(self.port) {
                *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no HTTP answer on port {} within {READY_DEADLINE:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Makes an IAM user allowed every DynamoDB action, and an access key for it, with
    /// boto3 (installed with moto).
    fn make_access_key(&self) -> (String, String) {
        let script = r#"
import boto3, json, sys
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="cachet")
iam.put_user_policy(UserName="cachet", PolicyName="dynamodb", PolicyDocument=json.dumps(
    {"Version": "2012-10-17",
     "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="cachet")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(self.endpoint())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run python3 (installed with moto) to make the test's access key");
        assert!(
            out.status.success(),
            "making the test's IAM access key failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        match (words.next(), words.next()) {
            (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
            _ => panic!("unexpected answer making the access key: {text}"),
        }
    }
}

impl Drop for DynamoServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh temporary directory for one server.
fn new_dir() -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cachet-dynamodb-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create the emulator's test directory");
    dir
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// Whether something on the port answers HTTP.
fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(1000)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(n) => buf[..n].starts_with(b"HTTP/1."),
        Err(_) => false,
    }
}
