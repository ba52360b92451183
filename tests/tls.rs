//! TLS end to end with certificates made in the test: the ingest and admin listeners over TLS
//! (with and without client certificates), and delivery to an `https://` influxd verified
//! against the cluster's `tls_ca` — and refused when the certificate is not trusted.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::fluxroute::Fluxroute;
use support::influxd::{Influxd, Options};
use support::pki::Ca;

fn embedded(dir: &Path) -> String {
    format!(
        "[queue]\nbackend = \"embedded\"\n[queue.embedded]\ndir = \"{}\"\npartitions = 2\n",
        dir.join("queue").display()
    )
}

fn client(ca: &Ca) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.reqwest())
}

/// An influxd serving HTTPS with a certificate from `ca` for 127.0.0.1.
fn https_influxd(ca: &Ca, dir: &Path) -> Influxd {
    let (cert, key) = ca.server(&["127.0.0.1", "localhost"]).write(dir, "influxd");
    Influxd::start_with(&Options {
        https: Some((cert, key)),
        ..Options::default()
    })
    .unwrap()
}

/// Points in `db` on an HTTPS influxd, counted through a client that trusts `ca`.
async fn count(influxd: &Influxd, ca: &Ca, db: &str) -> u64 {
    let r = client(ca)
        .build()
        .unwrap()
        .get(format!("{}/query", influxd.url()))
        .query(&[("db", db), ("q", "SELECT count(v) FROM m")])
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    v["results"][0]["series"][0]["values"][0][1]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn listeners_and_clusters_speak_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("fluxroute test CA");
    let influxd = https_influxd(&ca, dir.path());
    let (cert, key) = ca.server(&["127.0.0.1"]).write(dir.path(), "fluxroute");
    let ca_file = ca.write(dir.path(), "ca");
    let toml = format!(
        r#"
[ingest.tls]
cert = "{cert}"
key = "{key}"
[admin.tls]
cert = "{cert}"
key = "{key}"
{queue}
{cluster}
[[routes]]
databases = ["*"]
clusters = ["secure"]
"#,
        cert = cert.display(),
        key = key.display(),
        queue = embedded(dir.path()),
        cluster = support::config::cluster(
            "secure",
            &influxd.url(),
            &format!("tls_ca = \"{}\"", ca_file.display())
        ),
    );
    let fr = Fluxroute::start_with_client(&toml, client(&ca)).await;
    let https = client(&ca).build().unwrap();

    // Ingest over TLS, delivered over TLS to an influxd trusted through tls_ca.
    let r = https
        .post(format!("https://{}/write?db=tlsdb", fr.ingest))
        .body("m v=1 1\nm v=2 2\nm v=3 3\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count(&influxd, &ca, "tlsdb").await != 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lines never reached the https cluster"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The admin API over TLS.
    let status = https
        .get(format!("https://{}/admin/v1/status", fr.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);

    // Plain HTTP to a TLS listener gets no HTTP answer.
    let plain = support::http_client()
        .get(format!("http://{}/ping", fr.ingest))
        .send()
        .await;
    assert!(
        plain.is_err() || plain.as_ref().is_ok_and(|r| r.status() == 400),
        "{plain:?}"
    );
    // A client that does not trust the CA is refused by its own verification.
    let untrusted = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(format!("https://{}/ping", fr.ingest))
        .send()
        .await;
    assert!(untrusted.is_err(), "{untrusted:?}");
    fr.wait_metric(
        "fluxroute_http_connections_closed_total{listener=\"ingest\",reason=\"tls\"}",
        2.0,
        Duration::from_secs(10),
    )
    .await;
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_ca_makes_client_certificates_mandatory() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("fluxroute server CA");
    let clients = Ca::new("fluxroute client CA");
    let strangers = Ca::new("someone else's CA");
    let (cert, key) = ca.server(&["127.0.0.1"]).write(dir.path(), "fluxroute");
    let toml = format!(
        r#"
[ingest.tls]
cert = "{cert}"
key = "{key}"
client_ca = "{client_ca}"
{queue}
{cluster}
[[routes]]
databases = ["*"]
clusters = ["c"]
"#,
        cert = cert.display(),
        key = key.display(),
        client_ca = clients.write(dir.path(), "clients").display(),
        queue = embedded(dir.path()),
        cluster = support::config::cluster("c", "http://127.0.0.1:9", ""),
    );
    let fr = Fluxroute::start_with_client(
        &toml,
        client(&ca).identity(clients.client("ready-check").identity()),
    )
    .await;
    let ping = |builder: reqwest::ClientBuilder| {
        let url = format!("https://{}/ping", fr.ingest);
        async move { builder.build().unwrap().get(url).send().await }
    };
    let with_cert = ping(client(&ca).identity(clients.client("telegraf").identity())).await;
    assert_eq!(with_cert.unwrap().status(), 204);
    let without = ping(client(&ca)).await;
    assert!(without.is_err(), "no client certificate: {without:?}");
    let foreign = ping(client(&ca).identity(strangers.client("telegraf").identity())).await;
    assert!(
        foreign.is_err(),
        "a certificate from another CA: {foreign:?}"
    );
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_cluster_certificate_is_never_written_to() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("fluxroute test CA");
    let other = Ca::new("not the cluster's CA");
    let influxd = https_influxd(&ca, dir.path());
    // Trusting another CA (and, without tls_ca, the built-in web roots) must not reach it.
    for (name, extra) in [
        (
            "other_ca",
            format!(
                "tls_ca = \"{}\"",
                other.write(dir.path(), "other").display()
            ),
        ),
        ("web_roots", String::new()),
    ] {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let toml = format!(
            "{queue}\n{cluster}\n[[routes]]\ndatabases = [\"*\"]\nclusters = [\"secure\"]\n",
            queue = embedded(&sub),
            cluster = support::config::cluster("secure", &influxd.url(), &extra),
        );
        let fr = Fluxroute::start(&toml).await;
        let r = support::http_client()
            .post(format!("{}/write?db=untrusted", fr.url()))
            .body("m v=1 1\n")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "ingest still accepts and buffers");
        // Probes fail certificate verification: the cluster is down, its writes stay queued.
        fr.wait_metric(
            "fluxroute_cluster_up{cluster=\"secure\"}",
            0.0,
            Duration::from_secs(15),
        )
        .await;
        let status = fr.admin_text("/admin/v1/status").await;
        assert!(
            status.contains("certificate") || status.contains("UnknownIssuer"),
            "{name}: the status does not say why: {status}"
        );
        assert_eq!(
            fr.metric("fluxroute_drain_lines_written_total{cluster=\"secure\"}")
                .await
                .unwrap_or(0.0),
            0.0,
            "{name}"
        );
        fr.stop().await.unwrap();
    }
    assert_eq!(count(&influxd, &ca, "untrusted").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tls_files_stop_start_up_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let toml = format!(
        "[ingest.tls]\ncert = \"{m}\"\nkey = \"{m}\"\n{queue}\n{cluster}\n[[routes]]\ndatabases = [\"*\"]\nclusters = [\"c\"]\n",
        m = missing.display(),
        queue = embedded(dir.path()),
        cluster = support::config::cluster("c", "http://127.0.0.1:9", ""),
    );
    let e = Fluxroute::start_err(&toml).await;
    let text = format!("{:#}", anyhow::Error::from(e));
    assert!(
        text.contains("ingest listener TLS") && text.contains("missing.pem"),
        "{text}"
    );

    let toml = format!(
        "{queue}\n{cluster}\n[[routes]]\ndatabases = [\"*\"]\nclusters = [\"c\"]\n",
        queue = embedded(dir.path()),
        cluster = support::config::cluster(
            "c",
            "https://127.0.0.1:9",
            &format!("tls_ca = \"{}\"", missing.display())
        ),
    );
    let e = Fluxroute::start_err(&toml).await;
    let text = format!("{:#}", anyhow::Error::from(e));
    assert!(
        text.contains("cluster c") && text.contains("CA bundle") && text.contains("missing.pem"),
        "{text}"
    );
}
