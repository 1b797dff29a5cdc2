//! What a bench started is stopped when its `main` ends. A bench's fixture lives in a
//! static that is never dropped (criterion's groups borrow it for `'static`), so the
//! servers it started would outlive the bench: each is handed to [`keep`] instead, and
//! the [`StopAtExit`] guard `main` holds stops them all when it is dropped, on return or
//! when a panic unwinds `main`.
//!
//! ```ignore
//! #[path = "support/teardown.rs"]
//! mod teardown;
//! fn fixture() -> &'static Fixture {
//!     // ...
//!     let server = RedisServer::start();
//!     let url = server.url();
//!     teardown::keep(server);
//!     // ...
//! }
//! fn main() {
//!     let _stop = teardown::StopAtExit;
//!     benches();
//! }
//! ```

#![allow(dead_code)] // each bench uses a different part

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

/// What was kept, in the order it was started.
static KEPT: Mutex<Vec<Box<dyn Send>>> = Mutex::new(Vec::new());

/// Keeps `started` (a server, a directory to remove) until `main`'s [`StopAtExit`] is
/// dropped; dropping it stops it.
pub fn keep<T: Send + 'static>(started: T) {
    KEPT.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Box::new(started));
}

/// Held by `main`: dropping it drops everything [`keep`] kept, the last kept first.
pub struct StopAtExit;

impl Drop for StopAtExit {
    fn drop(&mut self) {
        let kept = std::mem::take(&mut *KEPT.lock().unwrap_or_else(PoisonError::into_inner));
        for started in kept.into_iter().rev() {
            drop(started);
        }
    }
}

/// A directory removed (with what it holds) when dropped.
pub struct RemovedDir(pub PathBuf);

impl Drop for RemovedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
