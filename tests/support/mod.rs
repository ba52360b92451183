//! Real services for integration tests: `influxd`, the Kafka-protocol broker, fluxroute itself.
//! Every service runs on free loopback ports in its own temp dir and stops on drop.
#![allow(dead_code, unreachable_pub)]

pub mod broker;
pub mod config;
pub mod faultproxy;
pub mod fluxroute;
pub mod influxd;
pub mod pki;
pub mod points;
pub mod process;
pub mod prometheus;

use std::time::Duration;

/// An HTTP client with timeouts for tests.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

/// Polls `probe` every `every` until it answers `Ok`, and returns that answer. After `within` the
/// test fails with `what` and the probe's last `Err`: what it saw instead.
pub async fn poll_until<T, E: std::fmt::Display>(
    what: &str,
    within: Duration,
    every: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(seen) => assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {within:?}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls `cond` every 50 ms until it holds; the test fails with `what` after `within`.
pub async fn wait_until(what: &str, within: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let probe = async || {
        if cond().await {
            Ok(())
        } else {
            Err("the condition does not hold")
        }
    };
    poll_until(what, within, Duration::from_millis(50), probe).await
}

/// The value of the first sample line of a `/metrics` text that starts with `prefix`.
pub fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The sum of every sample line of a `/metrics` text that starts with `prefix` (`None` when
/// there is none).
pub fn sample_sum(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
}

/// Parses a loadgen command line (`["loadgen", "--url", ...]`) as `fluxroute loadgen` does.
/// Load for a test, as `fluxroute loadgen` would send it to `url`: database `metrics` (created
/// first), 200-line batches from 10 hosts over 2 connections, quiet, recording what was
/// acknowledged to `record`. Change fields for the rest (`rate`, `duration`, `connections`…).
pub fn load(url: &str, record: Option<&std::path::Path>) -> ::fluxroute::loadgen::LoadgenArgs {
    let mut args = loadgen_args(["loadgen"]);
    args.url = url.to_owned();
    args.db = "metrics".to_owned();
    args.create_database = true;
    args.batch_size = 200;
    args.connections = 2;
    args.hosts = 10;
    args.quiet = true;
    args.record_acked = record.map(std::path::Path::to_owned);
    args
}

/// `secs` seconds, as loadgen's `--duration` takes them.
pub fn seconds(secs: u64) -> humantime::Duration {
    Duration::from_secs(secs).into()
}

pub fn loadgen_args<'a>(
    argv: impl IntoIterator<Item = &'a str>,
) -> ::fluxroute::loadgen::LoadgenArgs {
    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: ::fluxroute::loadgen::LoadgenArgs,
    }
    <Cli as clap::Parser>::try_parse_from(argv)
        .expect("loadgen arguments")
        .args
}
