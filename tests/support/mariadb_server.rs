//! A real MariaDB server for tests, on a free loopback port, in a temporary directory.
//!
//! `#[path = "../../tests/support/mariadb_server.rs"] mod mariadb_server;`. Standard
//! library only.
//!
//! ```ignore
//! let server = MariadbServer::start();
//! let url = server.url();            // mysql://root@127.0.0.1:PORT/cachet
//! server.kill();                     // SIGKILL: connections fail
//! server.restart();                  // back on the same port, data kept
//! ```
//!
//! `mariadb-install-db` and `mariadbd` come from Debian's `mariadb-server` package. The
//! server runs without grant tables (any user, no password), as root when the tests are
//! root (`--user=root`). There is no silent skip: without the binaries, `start` panics
//! saying how to install them.

#![allow(dead_code)] // each test binary uses a different part of the harness

// A test binary with several harnesses loads `process.rs` once per harness.
#[allow(clippy::duplicate_mod)]
#[path = "process.rs"]
mod process;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What a test that finds no MariaDB says.
pub const INSTALL_HINT: &str = "mariadbd / mariadb-install-db not found on PATH or in /usr/sbin: install them (e.g. `apt-get install -y mariadb-server`) — these tests need a real MariaDB";
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// A running MariaDB server, stopped when dropped.
pub struct MariadbServer {
    port: u16,
    dir: PathBuf,
    child: process::Running,
}

impl MariadbServer {
    /// Installs a data directory, starts a server and creates the database `cachet`.
    pub fn start() -> Self {
        let dir = process::new_dir("mariadb");
        let install = Command::new(find("mariadb-install-db"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run mariadb-install-db: {e}"));
        assert!(
            install.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&install.stdout),
            String::from_utf8_lossy(&install.stderr)
        );
        // The database the URL names: a database is a directory of the data directory.
        std::fs::create_dir_all(dir.join("data").join("cachet")).expect("create the database");
        let mut server = Self {
            port: 0,
            dir,
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
        panic!("could not start MariaDB: {last_failure}");
    }

    /// `mysql://root@127.0.0.1:PORT/cachet`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/cachet", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&self) {
        self.child.kill();
    }

    /// Stops the server if running and starts it again on the same port (data kept).
    pub fn restart(&self) {
        self.kill();
        let what = format!("MariaDB again on port {}", self.port);
        process::retry_start(&what, READY_DEADLINE, || self.spawn_and_wait());
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        let log = self.dir.join(format!("mariadb-{}.log", self.port));
        let child = Command::new(find("mariadbd"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg(format!(
                "--socket={}",
                self.dir.join("mysqld.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mysqld.pid").display()
            ))
            .arg(format!("--log-error={}", log.display()))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-grant-tables",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=16M",
                "--max-connections=200",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn mariadbd: {e}"))?;
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let child = process::wait_ready(
            child,
            READY_DEADLINE,
            Duration::from_millis(25),
            || log_text().contains("ready for connections") && process::accepts(self.port),
            |status| format!("mariadbd exited with {status} (port {} taken?)", self.port),
        )
        .map_err(|why| format!("MariaDB on port {}: {why}: {}", self.port, log_text()))?;
        self.child.set(child);
        Ok(())
    }
}

impl Drop for MariadbServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A MariaDB binary: on PATH or in /usr/sbin, /usr/bin.
fn find(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(program))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}
