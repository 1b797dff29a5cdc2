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

// A test binary with several harnesses loads `process.rs` once per harness.
#[allow(clippy::duplicate_mod)]
#[path = "process.rs"]
mod process;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

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
    child: process::Running,
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
            dir: process::new_dir("dynamodb"),
            auth,
            credentials: (TEST_ACCESS_KEY.to_owned(), TEST_SECRET_KEY.to_owned()),
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
        self.child.kill();
    }

    /// Stops the server if running and starts it again on the same port, empty.
    pub fn restart(&self) {
        self.kill();
        let what = format!("moto_server again on port {}", self.port);
        process::retry_start(&what, READY_DEADLINE, || self.spawn_and_wait());
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
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{NOT_FOUND}"),
            Err(e) => return Err(format!("spawn: {e}")),
        };
        let child = process::wait_ready(
            child,
            READY_DEADLINE,
            Duration::from_millis(50),
            || answers_http(self.port),
            |status| {
                format!(
                    "moto_server exited with {status} (port {} taken?)",
                    self.port
                )
            },
        )
        .map_err(|why| format!("moto_server on port {}: {why}", self.port))?;
        self.child.set(child);
        Ok(())
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
