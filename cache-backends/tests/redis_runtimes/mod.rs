//! What the Redis tier tests (`redis_tier.rs`, `redis_read_path.rs`) run their reads on:
//! runtimes of each kind, a `current_thread` runtime brought to read through a connection of
//! its own, and an executor of no runtime at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::store::RemoteTier;

use crate::redis_server::{self, RedisServer};

/// The last command of each client of the server but the one asking (`CLIENT LIST`'s
/// `cmd=`), sorted.
pub fn last_commands(server: &RedisServer) -> Vec<String> {
    let mut cmds: Vec<String> = clients(server).into_iter().map(|(_, cmd)| cmd).collect();
    cmds.sort();
    cmds
}

/// `CLIENT LIST`'s `id` and last command of each client of the server but the one asking.
pub fn clients(server: &RedisServer) -> Vec<(String, String)> {
    redis_server::client_list(server.port())
}

/// Runs `turn` (a turn of the runtimes, then a look at what they left) until it finds what
/// it waits for (`Ok`); past `limit`, the test fails with what its last look found (`Err`).
pub fn until(limit: Duration, mut turn: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + limit;
    loop {
        match turn() {
            Ok(()) => return,
            Err(why) => assert!(Instant::now() < deadline, "{why}"),
        }
    }
}

/// One turn of both runtimes: writes `written` from `mt`, then reads `read` (holding `v`)
/// from `ct` and lets `ct`'s tasks run.
pub fn write_then_read(
    t: &Arc<dyn RemoteTier>,
    ct: &tokio::runtime::Runtime,
    mt: &tokio::runtime::Runtime,
    written: &'static str,
    read: &'static str,
) {
    mt.block_on(async {
        t.set(written, b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    });
    ct.block_on(async {
        assert_eq!(t.get(read).await.unwrap(), Some(b"v".to_vec()));
        tokio::task::yield_now().await;
    });
}

/// A `current_thread` runtime with I/O and time.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A multi-thread runtime of one worker: its calls go through the shared connection.
pub fn one_worker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Writes `written` from `mt` and reads `read` (holding `v`) from `ct` until `ct`'s reads
/// go through a connection made on it: the shared connection's last command stays the
/// `SET`. The first read has that connection made, by a task of `ct`, which runs while
/// `ct` does. Fails past 10 s.
pub fn until_it_reads_on_its_own(
    server: &RedisServer,
    t: &Arc<dyn RemoteTier>,
    ct: &tokio::runtime::Runtime,
    mt: &tokio::runtime::Runtime,
    written: &'static str,
    read: &'static str,
) {
    until(Duration::from_secs(10), || {
        write_then_read(t, ct, mt, written, read);
        let last = last_commands(server);
        if last == ["getrange", "set"] {
            return Ok(());
        }
        Err(format!(
            "the runtime's reads never went through a connection of its own: {last:?}"
        ))
    });
}

/// [`futures_executor_block_on`], failing the test past 5 s instead of waiting forever.
pub fn block_on_within<F: std::future::Future>(fut: F) -> F::Output {
    park_until_ready(fut, Some(Instant::now() + Duration::from_secs(5)))
}

/// Polls `fut` on this thread, parking between wake-ups; past `deadline`, if any, the
/// test fails: a read waiting for a blocked runtime hung.
pub fn park_until_ready<F: std::future::Future>(fut: F, deadline: Option<Instant>) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        match deadline {
            Some(deadline) => {
                let left = deadline.checked_duration_since(Instant::now());
                let left = left.expect("a read waiting for a blocked runtime hung");
                std::thread::park_timeout(left);
            }
            None => std::thread::park(),
        }
    }
}
