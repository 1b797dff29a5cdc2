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

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a test that finds no MariaDB says.
pub const INSTALL_HINT: &str = "mariadbd / mariadb-install-db not found on PATH or in /usr/sbin: install them (e.g. `apt-get install -y mariadb-server`) — these tests need a real MariaDB";
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// A running MariaDB server, stopped when dropped.
pub struct MariadbServer {
    port: u16,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl MariadbServer {
    /// Installs a data directory, starts a server and creates the database `cachet`.
    pub fn start() -> Self {
        let dir = new_dir();
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
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if running and starts it again on the same port (data kept).
    pub fn restart(&self) {
        self.kill();
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(why) if Instant::now() > deadline => {
                    panic!("could not restart MariaDB on port {}: {why}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        let log = self.dir.join(format!("mariadb-{}.log", self.port));
        let mut child = Command::new(find("mariadbd"))
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
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "mariadbd exited with {status} (port {} taken?): {text}",
                    self.port
                ));
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("ready for connections") && answers(self.port) {
                *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "not ready on port {} within {READY_DEADLINE:?}: {text}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
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

/// Whether the server accepts a TCP connection (it greets first).
fn answers(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// A fresh temporary directory for one server.
fn new_dir() -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cachet-mariadb-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the MariaDB test directory");
    dir
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}
