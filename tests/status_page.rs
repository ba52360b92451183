//! The status page (`GET /` on the admin listener) in a real headless Chromium against a running
//! fluxroute with a real broker and two `influxd` clusters: it asks for the token on a 401, shows
//! both clusters up with the token, shows a cluster down once its `influxd` is killed (with the
//! endpoint's error under "recent errors"), and renders a screenshot into
//! `target/test-output/status_page.png`.
//!
//! Needs Debian's `chromium` package (`apt-get install chromium`; `scripts/test` installs it).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::broker::{Broker, Storage};
use support::config::Setup;
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;
use support::points::wait_for_points;

const TOKEN: &str = "page-token-1";

/// Where Debian's `chromium` package installs the browser (a wrapper script).
const CHROMIUM: &str = "/usr/bin/chromium";

/// Bound on one Chromium run; it is killed (its whole process group) after this.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// Page time Chromium lets pass (timers, fetches) before it dumps or shoots: the first status
/// fetch and a couple of 2 s refreshes.
const VIRTUAL_TIME_BUDGET_MS: u32 = 5000;

/// The page source, for the static checks.
const PAGE: &str = include_str!("../src/admin/page.html");

fn config(broker: &Broker, a: &Influxd, b: &Influxd) -> String {
    Setup::kafka(&broker.bootstrap())
        .section("[admin]\ntoken = \"${ADMIN_TOKEN}\"")
        .cluster("a", &a.url())
        .cluster("b", &b.url())
        .route(&["*"], &["a", "b"])
        .toml()
}

/// Runs Chromium headless with a fresh profile and `args`; returns its stdout.
///
/// Panics with install instructions when Chromium is missing, and with its stderr when it fails
/// or outlives [`CHROMIUM_TIMEOUT`] (then its whole process group is killed).
async fn chromium(args: &[String]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: install Debian's Chromium with `apt-get install -y chromium` \
         (scripts/test does this)"
    );
    let profile = tempfile::Builder::new()
        .prefix("chromium-")
        .tempdir()
        .unwrap();
    let child = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            // Without these Chromium stalls on a closed network, reaching for Google's services.
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a hung run is killed with its renderer and helpers.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {CHROMIUM}: {e}"));
    let group = child.id().unwrap();
    let result = tokio::time::timeout(CHROMIUM_TIMEOUT, child.wait_with_output()).await;
    // Helpers left behind either way; the group may already be gone.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
    let out = result
        .unwrap_or_else(|_| panic!("chromium {args:?} still running after {CHROMIUM_TIMEOUT:?}"))
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chromium {args:?}: {}\n{stderr}",
        out.status
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The page's DOM after its script ran for [`VIRTUAL_TIME_BUDGET_MS`].
async fn dump_dom(url: &str) -> String {
    chromium(&[
        format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"),
        "--dump-dom".to_owned(),
        url.to_owned(),
    ])
    .await
}

/// The `<tr class="{class}" data-cluster="{name}" …>…</tr>` element of `dom`, if any.
fn row<'a>(dom: &'a str, class: &str, name: &str) -> Option<&'a str> {
    let start = dom.find(&format!(r#"<tr class="{class}" data-cluster="{name}""#))?;
    let len = dom[start..].find("</tr>")?;
    Some(&dom[start..start + len])
}

/// Asserts the page rendered a status and shows `cluster` in `state`.
fn assert_cluster_state(dom: &str, cluster: &str, state: &str) {
    let tr = row(dom, "cluster", cluster)
        .unwrap_or_else(|| panic!("no row for cluster {cluster:?} in:\n{dom}"));
    assert!(
        tr.contains(&format!(r#"data-state="{state}""#))
            && tr.contains(&format!(
                r#"<span class="badge state-{state}">{state}</span>"#
            )),
        "cluster {cluster:?} not shown {state}: {tr}"
    );
}

async fn status(fr: &Fluxroute) -> serde_json::Value {
    let text = support::http_client()
        .get(format!("{}/admin/v1/status", fr.admin_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn write(fr: &Fluxroute, n: i64) -> BTreeSet<String> {
    let mut body = String::new();
    let mut set = BTreeSet::new();
    for i in 0..n {
        body.push_str(&format!("m,host=h{i} v={i} {}\n", 1_000_000 + i));
        set.insert(format!("m,host=h{i} {}", 1_000_000 + i));
    }
    let r = support::http_client()
        .post(format!("{}/write?db=d", fr.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    set
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_page_is_self_contained_and_never_parses_data_as_html() {
    for banned in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "http://",
        "https://",
        "src=",
        "<link",
        "@import",
    ] {
        assert!(!PAGE.contains(banned), "page.html contains {banned:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_page_in_headless_chromium_shows_clusters_up_then_down() {
    // Fail before starting any service when the browser is missing.
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: install Debian's Chromium with `apt-get install -y chromium` \
         (scripts/test does this)"
    );
    let broker = Broker::start(Storage::Memory);
    let a = Influxd::start().unwrap();
    let mut b = Influxd::start().unwrap();
    let env = HashMap::from([("ADMIN_TOKEN".to_owned(), TOKEN.to_owned())]);
    let fr = Fluxroute::start_with_env(&config(&broker, &a, &b), &env).await;
    let points = write(&fr, 10).await;
    wait_for_points(&a, "d", &points, false, Duration::from_secs(30)).await;
    wait_for_points(&b, "d", &points, false, Duration::from_secs(30)).await;

    // The page itself is open and HTML; the data behind it is not.
    let r = support::http_client()
        .get(format!("{}/", fr.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert!(r.headers().contains_key("content-security-policy"));
    assert_eq!(r.text().await.unwrap(), PAGE);

    // Without a token the page asks for one.
    let page = format!("{}/", fr.admin_url());
    let dom = dump_dom(&page).await;
    assert!(
        dom.contains(r#"<body data-status="unauthorized">"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<section id="auth">"#),
        "token field hidden:\n{dom}"
    );
    assert!(row(&dom, "cluster", "a").is_none(), "{dom}");
    let dom = dump_dom(&format!("{page}?token=wrong")).await;
    assert!(
        dom.contains(r#"<body data-status="unauthorized">"#)
            && dom.contains("The token was refused."),
        "{dom}"
    );

    // With it: both clusters up, the queue and version shown.
    let with_token = format!("{page}?token={TOKEN}");
    let dom = dump_dom(&with_token).await;
    assert!(dom.contains(r#"<body data-status="ok">"#), "{dom}");
    assert!(dom.contains(r#"<section id="auth" hidden="">"#), "{dom}");
    assert_cluster_state(&dom, "a", "up");
    assert_cluster_state(&dom, "b", "up");
    assert!(
        dom.contains(&format!(
            r#"<b id="version">{}</b>"#,
            env!("CARGO_PKG_VERSION")
        )),
        "{dom}"
    );
    assert!(dom.contains(r#"<b id="queue-backend">kafka</b>"#), "{dom}");
    // Reads of the routed databases ("*") go to a first, then b.
    assert!(
        dom.contains(r#"<tr class="read" data-database="*" data-cluster="a" data-stale="">"#),
        "{dom}"
    );
    assert!(dom.contains(">healthy</span>"), "{dom}");
    assert!(dom.contains(&format!(r#"data-endpoint="{}" data-up="true""#, b.url())));
    // The history charts: one point is taken at start-up, then one every 10 s.
    for kind in ["lag", "rate"] {
        let at = dom
            .find(&format!(r#"data-chart="{kind}" data-points=""#))
            .unwrap_or_else(|| panic!("no {kind} chart:\n{dom}"));
        let points: String = dom[at..]
            .split("data-points=\"")
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        assert!(
            points.parse::<usize>().is_ok_and(|n| n >= 1),
            "{kind}: {points}"
        );
    }

    // Kill b's influxd; once fluxroute reports it down, so does the page, with the error.
    b.kill();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(&fr).await;
        if s["clusters"][1]["state"] == "down" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fluxroute never reported b down: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dom = dump_dom(&with_token).await;
    assert!(dom.contains(r#"<body data-status="ok">"#), "{dom}");
    assert_cluster_state(&dom, "a", "up");
    assert_cluster_state(&dom, "b", "down");
    assert!(dom.contains(&format!(r#"data-endpoint="{}" data-up="false""#, b.url())));
    assert!(
        dom.contains(r#"<tr class="read" data-database="*" data-cluster="a" data-stale="">"#),
        "reads stay on a: {dom}"
    );
    let error = row(&dom, "error", "b")
        .unwrap_or_else(|| panic!("b's endpoint error not under recent errors:\n{dom}"));
    assert!(error.contains(&b.url()), "{error}");

    // A screenshot of that state, to look at.
    let png = output_dir().join("status_page.png");
    let _ = std::fs::remove_file(&png);
    chromium(&[
        format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"),
        format!("--screenshot={}", png.display()),
        "--window-size=1280,900".to_owned(),
        "--hide-scrollbars".to_owned(),
        with_token,
    ])
    .await;
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 900));
    assert!(
        bytes.len() > 10_000,
        "{} is only {} bytes",
        png.display(),
        bytes.len()
    );
    fr.stop().await.unwrap();
}
