//! A real PostgreSQL server for tests, on a free loopback port, in a temporary directory.
//!
//! Shared by the tests of several crates:
//! `#[path = "../../tests/support/postgres_server.rs"] mod postgres_server;`.
//! Standard library only.
//!
//! ```ignore
//! let server = PostgresServer::start();
//! let url = server.url();            // postgres://cachet@127.0.0.1:PORT/postgres
//! server.kill();                     // immediate shutdown: connections fail
//! server.restart();                  // back on the same port, data kept
//! let pw = PostgresServer::start_with_password("s3cret"); // password authentication
//! ```
//!
//! `initdb` and `postgres` come from Debian's `postgresql` package
//! (`/usr/lib/postgresql/<version>/bin`). PostgreSQL refuses to run as root, and tests run
//! as root in CI: the data directory is then given to `nobody`, and the server runs as
//! `nobody`. There is no silent skip: without the binaries, `start` panics saying how to
//! install them.

#![allow(dead_code)] // each test binary uses a different part of the harness

// A test binary with several harnesses loads `process.rs` once per harness.
#[allow(clippy::duplicate_mod)]
#[path = "process.rs"]
mod process;

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What a test that finds no PostgreSQL says.
pub const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, postgres) not found under /usr/lib/postgresql/*/bin or on PATH: install them (e.g. `apt-get install -y postgresql`) — these tests need a real PostgreSQL";
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// The role the tests connect as (the cluster's superuser).
pub const USER: &str = "cachet";

/// A running PostgreSQL server, stopped when dropped.
pub struct PostgresServer {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    password: Option<String>,
    /// `(uid, gid)` to run as when this process is root.
    run_as: Option<(u32, u32)>,
    child: process::Running,
}

impl PostgresServer {
    /// Starts a server accepting `cachet` without a password.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Starts a server whose `cachet` role needs `password` (SCRAM over TCP).
    pub fn start_with_password(password: &str) -> Self {
        Self::launch(Some(password.to_owned()))
    }

    fn launch(password: Option<String>) -> Self {
        let bin = find_bin();
        let dir = process::new_dir("pg");
        let run_as = if is_root() { Some(nobody()) } else { None };
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .expect("give the PostgreSQL test directory to nobody");
        }
        let mut server = Self {
            port: 0,
            dir,
            bin,
            password,
            run_as,
            child: process::Running::default(),
        };
        server.initdb();
        let mut last_failure = String::new();
        for _ in 0..5 {
            server.port = process::free_port();
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(why) => last_failure = why,
            }
        }
        panic!("could not start PostgreSQL: {last_failure}");
    }

    /// `postgres://cachet[:password]@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("postgres://{USER}:{p}@127.0.0.1:{}/postgres", self.port),
            None => format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port),
        }
    }

    /// The URL with another password, for tests of refused credentials.
    pub fn url_with_password(&self, password: &str) -> String {
        format!(
            "postgres://{USER}:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs SQL with `psql` (shipped with the server), as the superuser, and returns its
    /// output (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            USER,
            "-d",
            "postgres",
            "-p",
        ])
        .arg(self.port.to_string())
        .arg("-c")
        .arg(sql);
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        let out = cmd.output().expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A `psql` session kept open, fed SQL line by line on its standard input (e.g. to
    /// hold a row lock in an open transaction). Killed when dropped.
    pub fn psql_session(&self) -> PsqlSession {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            USER,
            "-d",
            "postgres",
            "-p",
        ])
        .arg(self.port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        PsqlSession(cmd.spawn().expect("run psql"))
    }

    /// Stops the server at once (SIGQUIT: immediate shutdown, as a crash would) and waits
    /// for it to be gone.
    pub fn kill(&self) {
        self.child.stop("-QUIT", Duration::from_secs(10));
    }

    /// Stops the server if running and starts it again on the same port (data kept).
    pub fn restart(&self) {
        self.kill();
        let what = format!("PostgreSQL again on port {}", self.port);
        process::retry_start(&what, READY_DEADLINE, || self.spawn_and_wait());
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd.env("LC_ALL", "C").current_dir(&self.dir);
        cmd
    }

    fn initdb(&self) {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(self.data()).args([
            "-U",
            USER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]);
        if let Some(p) = &self.password {
            let pwfile = self.dir.join("pwfile");
            std::fs::write(&pwfile, p).expect("write the password file");
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                    .expect("chown the password file");
            }
            cmd.arg("--auth=scram-sha-256")
                .arg(format!("--pwfile={}", pwfile.display()));
        } else {
            cmd.arg("--auth=trust");
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("run initdb: {e}"));
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        let log = self.dir.join(format!("postgres-{}.log", self.port));
        let _ = std::fs::remove_file(&log);
        let log_file = std::fs::File::create(&log).map_err(|e| format!("create the log: {e}"))?;
        if let Some((uid, gid)) = self.run_as {
            let _ = std::os::unix::fs::chown(&log, Some(uid), Some(gid));
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("spawn postgres: {e}"))?;
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let child = process::wait_ready(
            child,
            READY_DEADLINE,
            Duration::from_millis(25),
            || log_text().contains("ready to accept connections"),
            |status| format!("postgres exited with {status} (port {} taken?)", self.port),
        )
        .map_err(|why| format!("PostgreSQL on port {}: {why}: {}", self.port, log_text()))?;
        self.child.set(child);
        Ok(())
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An open `psql` session; see [`PostgresServer::psql_session`].
pub struct PsqlSession(Child);

impl PsqlSession {
    /// Sends SQL (ending each statement with `;`).
    pub fn send(&mut self, sql: &str) {
        use std::io::Write as _;
        let stdin = self.0.stdin.as_mut().expect("psql's stdin");
        stdin.write_all(sql.as_bytes()).expect("write to psql");
        stdin.write_all(b"\n").expect("write to psql");
        stdin.flush().expect("flush psql's stdin");
    }
}

impl Drop for PsqlSession {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The directory of `initdb` and `postgres`: the newest `/usr/lib/postgresql/*/bin`, else
/// wherever `initdb` is on `PATH`.
fn find_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
        .unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// `nobody`'s uid and gid, from /etc/passwd (65534 when not listed).
fn nobody() -> (u32, u32) {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.first() == Some(&"nobody") && fields.len() > 3)
                    .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                    .flatten()
            })
        })
        .unwrap_or((65534, 65534))
}
