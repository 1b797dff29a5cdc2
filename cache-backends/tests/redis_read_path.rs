//! The tier's single read (`Connection::read`: its command built in a thread's spare
//! buffers, redis's request held in the read's own future) against real `redis-server`s:
//! every read gets its own key's value whatever read before it on the thread, whichever
//! runtime (or none) polls it, and a read dropped at any of its await points, timed out or
//! failed by the server's answer leaves the connection answering the next reads with their
//! own replies.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod redis_runtimes;
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use cache_backends::redis::{RedisOptions, RedisTier};
use cache_core::store::RemoteTier;
use cache_core::TierErrorKind;
use redis_runtimes::{block_on_within, current_thread, one_worker, until_it_reads_on_its_own};
use redis_server::RedisServer;

fn tier(server: &RedisServer) -> Arc<dyn RemoteTier> {
    let options = RedisOptions::new(server.url())
        .operation_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300));
    Arc::new(RedisTier::new(&options).unwrap())
}

/// Stored keys around every length the read's spare buffers treat apart (a spare command is
/// kept for keys up to 256 bytes), a multi-byte one, and short ones on both sides of them: a
/// spare that kept bytes of a longer key would send them with a shorter one.
fn keys() -> Vec<String> {
    vec![
        "app:c:1".to_owned(),
        format!("app:c:{}", "k".repeat(250)),
        "app:c:2".to_owned(),
        format!("app:c:{}", "l".repeat(251)),
        "app:c:ключ".to_owned(),
        format!("app:c:{}", "m".repeat(3000)),
        "app:c:3".to_owned(),
    ]
}

/// What `key` holds: its own bytes, so a reply of another key's read shows.
fn value_of(key: &str) -> Vec<u8> {
    format!("value of {key}").into_bytes()
}

/// A key no test writes.
const MISSING: &str = "app:c:missing";

async fn write_all(t: &Arc<dyn RemoteTier>) {
    for key in keys() {
        t.set(&key, value_of(&key), Duration::from_secs(600))
            .await
            .unwrap();
    }
}

/// Reads every key (and a missing one), starting at the `from`th: each must be its own.
async fn read_all(t: &Arc<dyn RemoteTier>, from: usize) {
    let keys = keys();
    for i in 0..keys.len() {
        let key = &keys[(from + i) % keys.len()];
        assert_eq!(t.get(key).await.unwrap(), Some(value_of(key)), "{key}");
        assert_eq!(t.get(MISSING).await.unwrap(), None);
    }
}

/// Reads every key once: `false` at the first read that fails (the connection being
/// remade), a failure of the test at a read that succeeds with another key's value.
async fn all_right_or_failing(t: &Arc<dyn RemoteTier>) -> bool {
    for key in keys() {
        match t.get(&key).await {
            Ok(found) => assert_eq!(found, Some(value_of(&key)), "{key}"),
            Err(_) => return false,
        }
    }
    true
}

/// [`write_all`], `false` at the first write that fails (the connection being remade).
async fn write_all_or_failing(t: &Arc<dyn RemoteTier>) -> bool {
    for key in keys() {
        if t.set(&key, value_of(&key), Duration::from_secs(600))
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}

/// Runs `attempt` until it says the reads are back (reads after a timeout or a restart may
/// fail while the connection is remade), failing past 10 s.
fn until_back(mut attempt: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !attempt() {
        assert!(Instant::now() < deadline, "reads never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A server holding every key of [`keys`], a tier on it, a multi-thread runtime of one worker
/// (its reads go through the shared connection) and a `current_thread` runtime whose reads
/// go through a connection of its own.
struct Served {
    server: RedisServer,
    t: Arc<dyn RemoteTier>,
    mt: tokio::runtime::Runtime,
    ct: tokio::runtime::Runtime,
}

fn served() -> Served {
    let server = RedisServer::start();
    let t = tier(&server);
    let mt = one_worker();
    mt.block_on(write_all(&t));
    let ct = current_thread();
    until_it_reads_on_its_own(&server, &t, &ct, &mt, "app:c:own", "app:c:own");
    Served { server, t, mt, ct }
}

/// Polls `fut` once from no runtime and says whether it is still pending.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> bool {
    struct Nothing;
    impl Wake for Nothing {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Nothing));
    std::pin::Pin::new(fut)
        .poll(&mut Context::from_waker(&waker))
        .is_pending()
}

/// Many reads in flight on two workers (tasks yielding mid-way, so they move between the
/// workers and their threads' spares), each starting at another key, reads one at a time on
/// a `current_thread` runtime's own connection, and reads from no runtime: every read gets
/// its own key's value, a missing key none.
#[test]
fn every_read_gets_its_own_keys_value_whatever_read_before_it_on_every_path() {
    let Served { t, ct, .. } = &served();
    two_workers().block_on(async {
        let tasks: Vec<_> = (0..48)
            .map(|task| {
                let t = Arc::clone(t);
                tokio::spawn(async move {
                    for round in 0..10 {
                        read_all(&t, task + round).await;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    for from in 0..keys().len() {
        ct.block_on(read_all(t, from));
    }
    for from in 0..keys().len() {
        block_on_within(read_all(t, from));
    }
}

/// What a runtime (or none) does with a read: `block_on`.
trait Polls {
    fn run<F: Future>(&self, fut: F) -> F::Output;
    /// Polls `fut` for a while and says whether it is still pending (then drops it).
    fn pending_after_a_while<F: Future + Unpin>(&self, fut: F) -> bool;
}

impl Polls for tokio::runtime::Runtime {
    fn run<F: Future>(&self, fut: F) -> F::Output {
        self.block_on(fut)
    }
    fn pending_after_a_while<F: Future + Unpin>(&self, fut: F) -> bool {
        self.block_on(async { tokio::time::timeout(Duration::from_millis(100), fut).await })
            .is_err()
    }
}

/// No runtime at all: the caller's thread polls.
struct NoRuntime;

impl Polls for NoRuntime {
    fn run<F: Future>(&self, fut: F) -> F::Output {
        block_on_within(fut)
    }
    fn pending_after_a_while<F: Future + Unpin>(&self, mut fut: F) -> bool {
        let pending = poll_once(&mut fut);
        std::thread::sleep(Duration::from_millis(100));
        pending && poll_once(&mut fut)
    }
}

/// On `on`: reads dropped before their first poll, dropped after their request went to a
/// frozen server (several in flight at once, of every key), one timed out by
/// `operation_timeout`, and one dropped while its retry on a dead connection connects to a
/// restarted, frozen server: none of their replies, when the server answers them at last,
/// reaches a later read, and the connection goes on serving every key its own value.
fn dropped_reads_leave_the_next_ones_their_own_replies(served: &Served, on: &impl Polls) {
    let Served { server, t, mt, .. } = served;
    let keys = keys();
    // Before the first poll.
    for key in &keys {
        drop(t.get(key));
    }
    on.run(read_all(t, 0));
    // After the send, waiting for the reply.
    server.pause();
    for key in keys.iter().rev() {
        assert!(
            on.pending_after_a_while(t.get(key)),
            "a read of a frozen server answered"
        );
    }
    server.resume();
    on.run(read_all(t, 1));
    // Timed out: its reply comes after the read failed.
    server.pause();
    let err = on.run(t.get(&keys[1])).unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    server.resume();
    until_back(|| on.run(all_right_or_failing(t)));
    on.run(read_all(t, 2));
    // During the retry on a dead connection: the server restarted (its data gone) and frozen
    // before it answers the connect.
    server.restart();
    server.pause();
    assert!(
        on.pending_after_a_while(t.get(&keys[0])),
        "a read whose retry connects to a frozen server answered"
    );
    server.resume();
    until_back(|| mt.block_on(write_all_or_failing(t)));
    until_back(|| on.run(all_right_or_failing(t)));
    on.run(read_all(t, 3));
}

#[test]
fn reads_dropped_at_any_point_on_the_shared_connection_leave_the_next_ones_their_own_replies() {
    let served = served();
    dropped_reads_leave_the_next_ones_their_own_replies(&served, &served.mt);
}

#[test]
fn reads_dropped_at_any_point_on_a_runtimes_own_connection_leave_the_next_ones_their_own_replies() {
    let served = served();
    dropped_reads_leave_the_next_ones_their_own_replies(&served, &served.ct);
}

#[test]
fn reads_dropped_at_any_point_from_no_runtime_leave_the_next_ones_their_own_replies() {
    dropped_reads_leave_the_next_ones_their_own_replies(&served(), &NoRuntime);
}

/// A key of another type (the server answers `GETRANGE` with a `WRONGTYPE` error) fails the
/// read with the server's word, on every path, and the connection serves the next reads.
#[test]
fn a_server_error_fails_the_read_and_leaves_the_connection_serving() {
    let Served { server, t, mt, ct } = &served();
    redis_server::cli(server.port(), &["RPUSH", "app:c:list", "x"]);
    for _ in 0..2 {
        let err = mt.block_on(t.get("app:c:list")).unwrap_err();
        assert!(err.to_string().contains("WRONGTYPE"), "{err}");
        mt.block_on(read_all(t, 0));
        let err = ct.block_on(t.get("app:c:list")).unwrap_err();
        assert!(err.to_string().contains("WRONGTYPE"), "{err}");
        ct.block_on(read_all(t, 1));
        let err = block_on_within(t.get("app:c:list")).unwrap_err();
        assert!(err.to_string().contains("WRONGTYPE"), "{err}");
        block_on_within(read_all(t, 2));
    }
}

/// A bulk string of 100 bytes, more than the 16 the hostile server's reads ask for.
const BIG: &[u8] = b"$100\r\n0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n";

/// A server that answers every command `+OK` but `GETRANGE`, which it answers as its key
/// says (`app:c:{reply}`): what no `redis-server` sends to `GETRANGE` (nil, an integer, an
/// array, a status, a map, a value longer than asked, a reply cut short by a closed connection), or `hello` for
/// `app:c:good`. Its port.
fn hostile_server() -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let mut next_line = |reader: &mut BufReader<std::net::TcpStream>| {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => None,
                        Ok(_) => Some(line.trim_end().to_owned()),
                    }
                };
                loop {
                    let Some(head) = next_line(&mut reader) else {
                        return;
                    };
                    let count: usize = head.trim_start_matches('*').parse().unwrap();
                    let mut args = Vec::new();
                    for _ in 0..count {
                        let Some(len) = next_line(&mut reader) else {
                            return;
                        };
                        let len: usize = len.trim_start_matches('$').parse().unwrap();
                        let mut arg = vec![0; len + 2];
                        if reader.read_exact(&mut arg).is_err() {
                            return;
                        }
                        arg.truncate(len);
                        args.push(String::from_utf8(arg).unwrap());
                    }
                    let reply: &[u8] = if args[0].eq_ignore_ascii_case("GETRANGE") {
                        match args[1].trim_start_matches("app:c:") {
                            "nil" => b"$-1\r\n",
                            "integer" => b":7\r\n",
                            "array" => b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",
                            "nested" => b"*1\r\n*1\r\n:1\r\n",
                            "status" => b"+OK\r\n",
                            "error" => b"-ERR hostile\r\n",
                            "map" => b"%1\r\n+a\r\n+b\r\n",
                            "oversize" => b"$1000000\r\n",
                            "big" => BIG,
                            "cut" => {
                                let _ = writer.write_all(b"$5\r\nab");
                                return;
                            }
                            _ => b"$5\r\nhello\r\n",
                        }
                    } else {
                        b"+OK\r\n"
                    };
                    if writer.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Replies no `redis-server` gives to `GETRANGE`, from a hostile server (or a proxy in the
/// way): each read ends (a value, none, or an error; never a panic, nor a hang past
/// `operation_timeout`), and a good reply after it is read as it is, on every path.
#[test]
fn a_hostile_reply_never_panics_and_the_next_reads_are_served() {
    let port = hostile_server();
    let options = RedisOptions::new(format!("redis://127.0.0.1:{port}/0"))
        .operation_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .max_value_size(16);
    let t: Arc<dyn RemoteTier> = Arc::new(RedisTier::new(&options).unwrap());
    let mt = one_worker();
    let ct = current_thread();
    let good = |on: &dyn Fn() -> Option<Vec<u8>>| {
        until_back(|| on() == Some(b"hello".to_vec()));
    };
    for reply in [
        "nil", "integer", "array", "nested", "status", "error", "map", "oversize", "big", "cut",
    ] {
        let key = format!("app:c:{reply}");
        for _ in 0..2 {
            let _ = mt.block_on(t.get(&key));
            good(&|| mt.block_on(t.get("app:c:good")).ok().flatten());
            let _ = ct.block_on(t.get(&key));
            good(&|| ct.block_on(t.get("app:c:good")).ok().flatten());
            let _ = block_on_within(t.get(&key));
            good(&|| block_on_within(t.get("app:c:good")).ok().flatten());
        }
    }
}

/// How many `GETRANGE`s the server on `port` served since it started.
fn getranges_served(port: u16) -> u64 {
    let stats = redis_server::cli(port, &["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_getrange:calls="))
        .map_or(0, |calls| {
            calls
                .split(',')
                .next()
                .unwrap()
                .parse()
                .expect("a count of calls")
        })
}

/// A read of a key on one path, as its caller makes it.
type Read<'a> = dyn Fn(&str) -> Option<Vec<u8>> + 'a;

/// After a restart, each path's first read finds its connection dead and sends the read
/// again, once, with its own key, on a new connection: it succeeds with the key's value
/// (written meanwhile by another client), and the restarted server served exactly one
/// `GETRANGE` for it.
#[test]
fn after_a_restart_each_paths_first_read_is_sent_again_once_with_its_own_key() {
    let Served { server, t, mt, ct } = &served();
    block_on_within(read_all(t, 0));
    let on_shared = |key: &str| mt.block_on(t.get(key)).unwrap();
    let on_own = |key: &str| ct.block_on(t.get(key)).unwrap();
    let on_none = |key: &str| block_on_within(t.get(key)).unwrap();
    let paths: [(&str, &Read<'_>); 3] = [
        ("shared", &on_shared),
        ("runtime's own", &on_own),
        ("no runtime", &on_none),
    ];
    for (i, (path, read)) in paths.iter().enumerate() {
        let key = &keys()[i + 1];
        server.restart();
        let value = value_of(key);
        redis_server::cli(
            server.port(),
            &["SET", key, std::str::from_utf8(&value).unwrap()],
        );
        assert_eq!(read(key), Some(value), "{path}");
        assert_eq!(getranges_served(server.port()), 1, "{path}");
    }
}

/// From tasks on the workers of a multi-thread runtime (how most services call), reads of a
/// frozen server fail as timed out, unavailable (each within its `operation_timeout`; the test
/// fails a read still waiting after 5 s), and once the server is back every read gets
/// its own key's value again.
#[test]
fn reads_from_worker_tasks_time_out_on_a_frozen_server_then_get_their_own_values() {
    let Served { server, t, .. } = &served();
    let workers = two_workers();
    server.pause();
    let failed = workers.block_on(async {
        let reads: Vec<_> = keys()
            .into_iter()
            .map(|key| {
                let t = Arc::clone(t);
                tokio::spawn(async move {
                    let read = tokio::time::timeout(Duration::from_secs(5), t.get(&key));
                    read.await.expect("a read of a frozen server never ended")
                })
            })
            .collect();
        let mut failed = Vec::new();
        for read in reads {
            failed.push(read.await.unwrap().unwrap_err());
        }
        failed
    });
    for err in failed {
        assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("timed out"), "{err}");
    }
    server.resume();
    until_back(|| {
        workers.block_on(async {
            let t = Arc::clone(t);
            tokio::spawn(async move { all_right_or_failing(&t).await })
                .await
                .unwrap()
        })
    });
    workers.block_on(async {
        let t = Arc::clone(t);
        tokio::spawn(async move { read_all(&t, 4).await })
            .await
            .unwrap();
    });
}
