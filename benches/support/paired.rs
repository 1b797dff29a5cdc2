//! The paired-rounds runner the L2 benches share (`benches/redis.rs`,
//! `benches/redis_cluster.rs`, `benches/database.rs`, `cache-backends/benches/dynamodb.rs`).
//!
//! On a machine whose load swings within seconds, criterion's groups (each row measured
//! alone, seconds or minutes after the row it is compared with) give ratios that move by 2×
//! between runs. Paired rounds run every row once per round, in a rotated order, and divide
//! each row's throughput by its baseline row's in the same round; the median of those
//! per-round ratios is the figure BENCHMARKS.md records.
//!
//! A bench's `main` runs criterion's groups, then [`wanted`] decides from the command line
//! whether its paired rounds run too, and [`Paired::run`] runs them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// One timed operation; task `i` of a concurrent run calls it with `i` (a row may read key
/// `i`, or ignore it).
pub type Op = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Boxes `f` as an [`Op`] (every row pays the same box and allocation).
pub fn op<F, Fut>(f: F) -> Op
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |i| Box::pin(f(i)))
}

/// Runs `op(i)` `iters` times in each task `i` of `tasks`, released together by a barrier;
/// the wall time from the release to the last task's end.
pub fn concurrently(rt: &Runtime, tasks: u64, iters: u64, op: &Op) -> Duration {
    let op = Arc::clone(op);
    rt.block_on(async move {
        let barrier = Arc::new(tokio::sync::Barrier::new(tasks as usize + 1));
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let (op, barrier) = (Arc::clone(&op), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    for _ in 0..iters {
                        op(i).await;
                    }
                })
            })
            .collect();
        barrier.wait().await;
        let t0 = Instant::now();
        for h in handles {
            h.await.expect("a bench task panicked");
        }
        t0.elapsed()
    })
}

/// Runs `op(0)` `iters` times one after the other; the wall time.
pub fn one_at_a_time(rt: &Runtime, iters: u64, op: &Op) -> Duration {
    rt.block_on(async {
        let t0 = Instant::now();
        for _ in 0..iters {
            op(0).await;
        }
        t0.elapsed()
    })
}

/// One row of a paired comparison.
pub struct Row {
    /// The name printed in the table.
    pub name: String,
    /// What one call is.
    pub op: Op,
    /// The index of the row this one's ratio is taken to (itself for a baseline row).
    pub baseline: usize,
}

impl Row {
    /// A row whose ratio is taken to row `baseline`.
    pub fn new(name: impl Into<String>, op: Op, baseline: usize) -> Self {
        Self {
            name: name.into(),
            op,
            baseline,
        }
    }
}

/// How a bench's paired rounds run.
pub struct Paired {
    /// The name of the comparison (`database_paired`): what [`wanted`] matches a filter
    /// against, and the table's title.
    pub name: &'static str,
    /// Rounds; the table prints medians over them.
    pub rounds: usize,
    /// Calls per row and round one at a time (`None`: no one-at-a-time column).
    pub single_ops: Option<u64>,
    /// Tasks at once in the concurrent column.
    pub tasks: u64,
    /// Calls per task, row and round in the concurrent column.
    pub task_ops: u64,
    /// The unit printed per second (`reads`, `ops`).
    pub unit: &'static str,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Paired {
    /// Runs every row once per round (one at a time if asked, then concurrently), the rows
    /// in an order rotated each round, and prints a Markdown table: each row's median
    /// calls/s and the median of its per-round ratios to its baseline row.
    pub fn run(&self, rt: &Runtime, rows: &[Row]) {
        let n = rows.len();
        // [row][round] calls/s
        let mut single = vec![Vec::with_capacity(self.rounds); n];
        let mut many = vec![Vec::with_capacity(self.rounds); n];
        for round in 0..self.rounds {
            for i in (0..n).map(|i| (i + round) % n) {
                let op = &rows[i].op;
                if let Some(ops) = self.single_ops {
                    let took = one_at_a_time(rt, ops, op);
                    single[i].push(ops as f64 / took.as_secs_f64());
                }
                let took = concurrently(rt, self.tasks, self.task_ops, op);
                many[i].push((self.task_ops * self.tasks) as f64 / took.as_secs_f64());
            }
        }
        let ratio = |runs: &[Vec<f64>], i: usize| {
            median(
                runs[i]
                    .iter()
                    .zip(&runs[rows[i].baseline])
                    .map(|(c, r)| c / r)
                    .collect(),
            )
        };
        let (unit, tasks) = (self.unit, self.tasks);
        match self.single_ops {
            Some(ops) => println!(
                "{}: {} rounds; per round and row {ops} {unit} one at a time, then {tasks} tasks x \
                 {} {unit}; medians over rounds; ratio = median of the per-round ratios to the \
                 row's baseline",
                self.name, self.rounds, self.task_ops
            ),
            None => println!(
                "{}: {} rounds of {tasks} tasks x {} {unit} per row; medians over rounds; ratio = \
                 median of the per-round ratios to the row's baseline",
                self.name, self.rounds, self.task_ops
            ),
        }
        if self.single_ops.is_some() {
            println!(
                "| bench | baseline | 1 at a time: {unit}/s | µs each | ratio | {tasks} tasks: {unit}/s | ratio |"
            );
            println!("|---|---|---:|---:|---:|---:|---:|");
        } else {
            println!("| bench | baseline | {tasks} tasks: {unit}/s | ratio |");
            println!("|---|---|---:|---:|");
        }
        for (i, row) in rows.iter().enumerate() {
            let base = &rows[row.baseline].name;
            let concurrent = median(many[i].clone());
            if self.single_ops.is_some() {
                let one = median(single[i].clone());
                println!(
                    "| {} | {base} | {:.1} k/s | {:.1} | {:.2} | {:.1} k/s | {:.2} |",
                    row.name,
                    one / 1e3,
                    1e6 / one,
                    ratio(&single, i),
                    concurrent / 1e3,
                    ratio(&many, i),
                );
            } else {
                println!(
                    "| {} | {base} | {:.1} k/s | {:.2} |",
                    row.name,
                    concurrent / 1e3,
                    ratio(&many, i),
                );
            }
        }
    }
}

/// criterion's options that take a value (criterion 0.8's `configure_from_args`): their
/// values are not filters.
const VALUED: &[&str] = &[
    "-c",
    "--color",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--format",
    "--profile-time",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

/// The benchmark filter on a bench's command line, as criterion reads it: the first free
/// argument, where the value after an option that takes one (`--warm-up-time 1`) is not
/// free.
pub fn filter(args: &[String]) -> Option<&str> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if VALUED.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

/// Whether paired rounds named `name` run for this command line: `cargo bench` measures
/// (`--bench`, and neither `--list`, `--test` nor `--profile-time`), and the filter, if
/// any, selects `name` (contained in it; equal to it with `--exact`).
pub fn wanted_by(args: &[String], name: &str) -> bool {
    let has = |flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if !has("--bench") || has("--list") || has("--test") || has("--profile-time") {
        return false;
    }
    match filter(args) {
        None => true,
        Some(f) if has("--exact") => f == name,
        Some(f) => name.contains(f),
    }
}

/// [`wanted_by`] for this process's arguments.
pub fn wanted(name: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    wanted_by(&args, name)
}
