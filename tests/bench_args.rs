//! The benches' command-line reading (`benches/support/paired.rs`): whether a bench's paired
//! rounds run for a `cargo bench` command line. Criterion's own options take values
//! (`--warm-up-time 1`) that are not benchmark filters.

#[allow(dead_code)]
#[path = "../benches/support/paired.rs"]
mod paired;

use paired::{filter, wanted_by};

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn option_values_are_not_filters() {
    let line = args("--bench --warm-up-time 1 --measurement-time 3");
    assert_eq!(filter(&line), None);
    assert!(wanted_by(&line, "database_paired"));
    let line = args("--warm-up-time 1 --bench --sample-size 10 database_paired");
    assert_eq!(filter(&line), Some("database_paired"));
    assert!(wanted_by(&line, "database_paired"));
}

#[test]
fn a_filter_selects_by_name() {
    assert!(wanted_by(&args("--bench paired"), "redis_paired"));
    assert!(!wanted_by(
        &args("--bench --warm-up-time 1 database_64tasks"),
        "database_paired"
    ));
    assert!(wanted_by(
        &args("--bench --exact dynamodb_paired"),
        "dynamodb_paired"
    ));
    assert!(!wanted_by(
        &args("--bench --exact dynamodb"),
        "dynamodb_paired"
    ));
    assert!(wanted_by(
        &args("--bench --color=never redis"),
        "redis_cluster_paired"
    ));
}

#[test]
fn only_a_measuring_run_runs_them() {
    assert!(!wanted_by(&args(""), "redis_paired"));
    assert!(!wanted_by(&args("--bench --list"), "redis_paired"));
    assert!(!wanted_by(&args("--test"), "redis_paired"));
    assert!(!wanted_by(
        &args("--bench --profile-time 5 redis_hit_64tasks/cachet_get"),
        "redis_paired"
    ));
}
