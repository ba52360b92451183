//! Kafka security end to end: SASL/SCRAM (SHA-256 and SHA-512) and TLS to a real broker that
//! requires authentication (`nisshi broker --authentication`), writes through the ingest arriving
//! in a real `influxd` via the drain; clear start-up errors for refused credentials and
//! untrusted certificates (the binary as a child process); `/health` failing while the broker
//! refuses the credentials, and recovering; no property that turns TLS verification off.
//!
//! nisshi 0.6.0 cannot serve TLS itself (README, "Kafka security"), so the TLS tests put a TLS
//! front ([`support::broker::TlsFront`], rustls) before the broker and have the broker advertise
//! it: librdkafka's handshake, certificate and host name verification and SASL inside TLS are
//! real, with a CA made here by `rcgen`.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::broker::{authenticated, Broker, Options, Scram, ScramUser, TlsFront};
use support::config::Setup;
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;
use support::process::{free_port, FluxrouteProcess};

const USER: &str = "fluxroute";
const PASSWORD: &str = "s3cret-Kafka-pw";
/// A value that must never show in a config view.
const KEY_PASSWORD: &str = "key-pw-never-shown";
/// The longest a refused start-up may take: refusals are reported at once, not after the
/// 30 s queue set-up timeout.
const STARTUP_ERROR_WITHIN: Duration = Duration::from_secs(15);

/// A CA, and a server certificate and key it signed.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A fresh CA and a server certificate for `names` (IP addresses or DNS names).
fn pki(names: &[&str]) -> Pki {
    let ca = support::pki::Ca::new("fluxroute test CA");
    let leaf = ca.server(names);
    Pki {
        ca_pem: ca.pem,
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
    }
}

/// A broker requiring SCRAM authentication behind a TLS front serving `pki`'s certificate.
fn tls_broker(users: &[ScramUser], pki: &Pki) -> (Broker, TlsFront) {
    let listener = TlsFront::bind();
    let front_addr = listener.local_addr().unwrap();
    let broker = Broker::start_authenticated(
        users,
        Options {
            advertised: Some(front_addr.to_string()),
            ..Options::default()
        },
    );
    let front = TlsFront::start(listener, &pki.cert_pem, &pki.key_pem, broker.addr());
    (broker, front)
}

/// fluxroute on Kafka at `bootstrap` with `properties` (lines of `[queue.kafka.properties]`)
/// and `kafka_extra` (lines of `[queue.kafka]`), delivering every database to `influxd` (to a
/// closed port without one). No `[ingest]` table: the child-process helpers prepend one.
fn config(
    bootstrap: &str,
    kafka_extra: &str,
    properties: &str,
    influxd: Option<&Influxd>,
) -> String {
    let endpoint = influxd.map_or_else(|| "http://127.0.0.1:9".to_owned(), Influxd::url);
    Setup::kafka(bootstrap)
        .queue_line(kafka_extra)
        .property(properties)
        .cluster("a", &endpoint)
        .route(&["*"], &["a"])
        .toml()
}

/// `[queue.kafka.properties]` lines for SASL with `mechanism`, `user` and `password`.
fn sasl(protocol: &str, mechanism: Scram, user: &str, password: &str) -> String {
    format!(
        "\"security.protocol\" = \"{protocol}\"\n\"sasl.mechanisms\" = \"{}\"\n\
         \"sasl.username\" = \"{user}\"\n\"sasl.password\" = \"{password}\"\n",
        mechanism.kafka_name()
    )
}

/// `n` lines of measurement `m` from `start`, and the points they make.
fn lines(m: &str, start: i64, n: i64) -> (String, BTreeSet<String>) {
    let mut body = String::new();
    let mut points = BTreeSet::new();
    for i in start..start + n {
        let ts = 1_600_000_000_000_000_000 + i;
        body.push_str(&format!("{m},host=h{} v={i} {ts}\n", i % 3));
        points.insert(format!("{m},host=h{} {ts}", i % 3));
    }
    (body, points)
}

async fn post(url: &str, db: &str, body: &str) -> reqwest::Response {
    support::http_client()
        .post(format!("{url}/write?db={db}"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn write_ok(url: &str, db: &str, body: &str) {
    let r = post(url, db, body).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
}

/// `GET /health`: status and the JSON body's message.
async fn health(url: &str) -> (u16, String) {
    let r = support::http_client()
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    (
        status,
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Waits until `/health` answers `want`; returns its message.
async fn wait_health(url: &str, want: u16, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (status, message) = health(url).await;
        if status == want {
            return message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/health still {status} ({message}) after {within:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The result of a `fluxroute serve` that was expected to stop by itself.
struct Exit {
    code: Option<i32>,
    output: String,
    took: Duration,
}

/// Runs `fluxroute serve` with `body` (a config without listeners) and waits for it to exit,
/// at most `within` (then it is killed and the test fails).
async fn serve_until_exit(dir: &Path, name: &str, body: &str, within: Duration) -> Exit {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "[ingest]\nlisten = \"127.0.0.1:{}\"\n[admin]\nlisten = \"127.0.0.1:{}\"\n{body}",
        free_port(),
        free_port()
    );
    std::fs::write(&path, text).unwrap();
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fluxroute"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "fluxroute still running after {within:?}; log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Exit {
        code: status.code(),
        output: std::fs::read_to_string(&log_path).unwrap_or_default(),
        took: started.elapsed(),
    }
}

/// The `error: …` line a failed `fluxroute serve` printed last.
/// Runs `fluxroute serve` with `body`, which the brokers at `bootstrap` refuse: asserts that it
/// exits 1 within [`STARTUP_ERROR_WITHIN`] with an error line naming `bootstrap`.
async fn refused_start_up(dir: &Path, name: &str, body: &str, bootstrap: &str) -> Exit {
    let exit = serve_until_exit(dir, name, body, Duration::from_secs(60)).await;
    let error = error_line(&exit.output);
    eprintln!(
        "{name}: exit {:?} after {:?}: {error}",
        exit.code, exit.took
    );
    assert_eq!(exit.code, Some(1), "{name}: {}", exit.output);
    assert!(
        exit.took < STARTUP_ERROR_WITHIN,
        "{name}: took {:?}: {error}",
        exit.took
    );
    assert!(error.contains(bootstrap), "{name}: {error}");
    exit
}

fn error_line(output: &str) -> &str {
    output
        .lines()
        .rev()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{output}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn scram_sha256_over_plaintext_delivers_writes_and_keeps_secrets_out_of_views() {
    let broker = Broker::start_authenticated(
        &[ScramUser::new(USER, PASSWORD, Scram::Sha256)],
        Options::default(),
    );
    let a = Influxd::start().unwrap();
    let properties = sasl("SASL_PLAINTEXT", Scram::Sha256, USER, PASSWORD)
        + &format!("\"ssl.key.password\" = \"{KEY_PASSWORD}\"\n");
    let fr = Fluxroute::start(&config(&broker.bootstrap(), "", &properties, Some(&a))).await;

    let (body, want) = lines("sasl256", 0, 500);
    write_ok(&fr.url(), "sec", &body).await;
    support::points::wait_for_points(&a, "sec", &want, false, Duration::from_secs(60)).await;

    let view = support::http_client()
        .get(format!("{}/admin/v1/config", fr.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(view.status(), 200);
    let text = view.text().await.unwrap();
    assert!(!text.contains(PASSWORD), "password shown: {text}");
    assert!(!text.contains(KEY_PASSWORD), "key password shown: {text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let props = &json["queue"]["kafka"]["properties"];
    assert_eq!(props["sasl.password"], "***", "{props}");
    assert_eq!(props["ssl.key.password"], "***", "{props}");
    assert_eq!(props["security.protocol"], "SASL_PLAINTEXT", "{props}");
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn scram_sha512_over_tls_with_a_verified_ca_delivers_writes() {
    let pki = pki(&["127.0.0.1", "localhost"]);
    let (_broker, front) = tls_broker(&[ScramUser::new(USER, PASSWORD, Scram::Sha512)], &pki);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let a = Influxd::start().unwrap();
    let properties = sasl("SASL_SSL", Scram::Sha512, USER, PASSWORD)
        + &format!("\"ssl.ca.location\" = \"{}\"\n", ca.display());
    let fr = Fluxroute::start(&config(&front.bootstrap(), "", &properties, Some(&a))).await;

    let (body, want) = lines("tls512", 0, 500);
    write_ok(&fr.url(), "sec", &body).await;
    let (more, more_points) = lines("tls512", 500, 500);
    write_ok(&fr.url(), "sec", &more).await;
    let want: BTreeSet<String> = want.union(&more_points).cloned().collect();
    support::points::wait_for_points(&a, "sec", &want, false, Duration::from_secs(60)).await;
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_stop_start_up_at_once_naming_the_broker() {
    let broker = Broker::start_authenticated(
        &[ScramUser::new(USER, PASSWORD, Scram::Sha256)],
        Options::default(),
    );
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "wrong-password",
            sasl("SASL_PLAINTEXT", Scram::Sha256, USER, "not-the-password"),
        ),
        (
            "unknown-user",
            sasl("SASL_PLAINTEXT", Scram::Sha256, "mallory", PASSWORD),
        ),
        // The user's credentials are stored for SCRAM-SHA-256 only.
        (
            "other-mechanism",
            sasl("SASL_PLAINTEXT", Scram::Sha512, USER, PASSWORD),
        ),
    ];
    for (name, properties) in cases {
        let exit = refused_start_up(
            dir.path(),
            name,
            &config(&broker.bootstrap(), "", &properties, None),
            &broker.bootstrap(),
        )
        .await;
        let error = error_line(&exit.output);
        assert!(error.contains("refused fluxroute"), "{name}: {error}");
        assert!(
            error.contains("SASL authentication error"),
            "{name}: {error}"
        );
        assert!(!error.contains(PASSWORD), "{name}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_or_misnamed_certificates_stop_start_up_unless_insecure_skip_verify() {
    let pki_ok = pki(&["127.0.0.1"]);
    let users = [ScramUser::new(USER, PASSWORD, Scram::Sha512)];
    let (broker, front) = tls_broker(&users, &pki_ok);
    let dir = tempfile::tempdir().unwrap();
    // A CA that did not sign the broker's certificate.
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, pki(&["127.0.0.1"]).ca_pem).unwrap();
    // The right CA, but a certificate for another host name, in a second front.
    let misnamed = pki(&["kafka.example.org"]);
    let misnamed_ca = dir.path().join("misnamed-ca.pem");
    std::fs::write(&misnamed_ca, &misnamed.ca_pem).unwrap();
    let misnamed_front = TlsFront::start(
        TlsFront::bind(),
        &misnamed.cert_pem,
        &misnamed.key_pem,
        broker.addr(),
    );
    let tls = |ca: &Path| {
        sasl("SASL_SSL", Scram::Sha512, USER, PASSWORD)
            + &format!("\"ssl.ca.location\" = \"{}\"\n", ca.display())
    };

    let cases = [
        ("untrusted", front.bootstrap(), tls(&other_ca)),
        ("misnamed", misnamed_front.bootstrap(), tls(&misnamed_ca)),
    ];
    for (name, bootstrap, properties) in &cases {
        let exit = refused_start_up(
            dir.path(),
            name,
            &config(bootstrap, "", properties, None),
            bootstrap,
        )
        .await;
        let error = error_line(&exit.output);
        assert!(error.contains("SSL handshake failed"), "{name}: {error}");
        assert!(
            error.contains("certificate verify failed"),
            "{name}: {error}"
        );
    }

    // The same untrusted certificate, with verification turned off by its named option: the
    // router starts, says so, and its writes are acknowledged by the broker through TLS.
    let insecure = config(
        &front.bootstrap(),
        "insecure_skip_verify = true",
        &tls(&other_ca),
        None,
    );
    let fr = FluxrouteProcess::start(dir.path(), "insecure", &insecure).await;
    let (body, _) = lines("insecure", 0, 10);
    write_ok(&fr.url(), "sec", &body).await;
    assert!(
        fr.log()
            .contains("certificates and host names are NOT verified"),
        "{}",
        fr.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_fails_while_the_broker_refuses_the_credentials_and_recovers() {
    let user = ScramUser::new(USER, PASSWORD, Scram::Sha256);
    let mut broker = Broker::start_authenticated(std::slice::from_ref(&user), Options::default());
    let a = Influxd::start().unwrap();
    let properties = sasl("SASL_PLAINTEXT", Scram::Sha256, USER, PASSWORD);
    let fr = Fluxroute::start(&config(&broker.bootstrap(), "", &properties, Some(&a))).await;
    let (first, mut want) = lines("health", 0, 200);
    write_ok(&fr.url(), "sec", &first).await;
    assert_eq!(health(&fr.url()).await.0, 200);

    // The user is removed while the router runs (the broker's user commands need a broker without
    // authentication, so it restarts twice); reconnecting now fails authentication.
    broker.restart_with(Options::default());
    broker.delete_user(USER, Scram::Sha256);
    broker.restart_with(authenticated(Options::default()));
    let refused_at = Instant::now();
    let message = wait_health(&fr.url(), 503, Duration::from_secs(30)).await;
    eprintln!("/health 503 after {:?}: {message}", refused_at.elapsed());
    assert!(message.contains("refused the connection"), "{message}");
    assert!(message.contains("SASL authentication error"), "{message}");
    let (refused, _) = lines("health", 200, 10);
    let r = post(&fr.url(), "sec", &refused).await;
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());

    // The user is back: health and writes recover without a restart of the router.
    broker.restart_with(Options::default());
    broker.create_user(&user);
    broker.restart_with(authenticated(Options::default()));
    let back_at = Instant::now();
    wait_health(&fr.url(), 200, Duration::from_secs(60)).await;
    eprintln!("/health 200 again after {:?}", back_at.elapsed());
    let (last, last_points) = lines("health", 1000, 200);
    write_ok(&fr.url(), "sec", &last).await;
    want.extend(last_points);
    // The refused write may still have been appended after its 503 (at-least-once).
    support::points::wait_for_points(&a, "sec", &want, true, Duration::from_secs(60)).await;
    fr.stop().await.unwrap();
}

#[test]
fn config_refuses_properties_that_turn_tls_verification_off() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, kafka_extra: &str, properties: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            config("127.0.0.1:9092", kafka_extra, properties, None),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_fluxroute"))
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let tls = "\"security.protocol\" = \"SSL\"\n";

    for (name, property) in [
        (
            "verification-off",
            "\"enable.ssl.certificate.verification\" = false",
        ),
        (
            "verification-zero",
            "\"enable.ssl.certificate.verification\" = \"0\"",
        ),
        (
            "hostname-off",
            "\"ssl.endpoint.identification.algorithm\" = \"none\"",
        ),
    ] {
        let (code, text) = check(name, "", &format!("{tls}{property}\n"));
        assert_eq!(code, Some(2), "{name}: {text}");
        assert!(
            text.contains("would turn off TLS verification"),
            "{name}: {text}"
        );
        assert!(text.contains("insecure_skip_verify"), "{name}: {text}");
    }

    // Their secure values are librdkafka's defaults, and may be spelled out.
    let (code, text) = check(
        "secure-values",
        "",
        &format!(
            "{tls}\"enable.ssl.certificate.verification\" = true\n\
             \"ssl.endpoint.identification.algorithm\" = \"https\"\n"
        ),
    );
    assert_eq!(code, Some(0), "{text}");

    // The named option is accepted with TLS, refused where there is no TLS to skip.
    let (code, text) = check("insecure-tls", "insecure_skip_verify = true", tls);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = check(
        "insecure-plaintext",
        "insecure_skip_verify = true",
        "\"security.protocol\" = \"SASL_PLAINTEXT\"\n",
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("only applies to TLS connections"), "{text}");
}
