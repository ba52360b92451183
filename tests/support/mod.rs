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

use std::time::Duration;

/// An HTTP client with timeouts for tests.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
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
