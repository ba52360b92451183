//! The metrics catalogue (`docs/metrics.md`) and the Prometheus text format, as the
//! observability tests read them.

use std::collections::{BTreeMap, BTreeSet};

use super::read;

/// A metric family: its type and label names (without a histogram's `le`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Family {
    pub(super) kind: String,
    pub(super) labels: BTreeSet<String>,
}

/// The `## Catalogue` table of docs/metrics.md: name -> family.
pub(super) fn documented_families() -> BTreeMap<String, Family> {
    let doc = read("docs/metrics.md");
    let mut out = BTreeMap::new();
    let mut in_catalogue = false;
    for line in doc.lines() {
        if line.starts_with("## ") {
            in_catalogue = line.trim() == "## Catalogue";
            continue;
        }
        if !in_catalogue || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.split(" | ").map(str::trim).collect();
        assert!(cells.len() >= 4, "docs/metrics.md: malformed row {line:?}");
        let name = cells[0]
            .trim_start_matches("| ")
            .trim_matches('`')
            .to_owned();
        let labels = cells[2]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_owned())
            .filter(|l| !l.is_empty() && l != "—")
            .collect();
        let family = Family {
            kind: cells[1].to_owned(),
            labels,
        };
        assert!(
            out.insert(name.clone(), family).is_none(),
            "docs/metrics.md lists {name} twice"
        );
    }
    assert!(!out.is_empty(), "docs/metrics.md has no catalogue rows");
    out
}

/// A scrape in Prometheus' text format: families (from `# TYPE` and the samples' labels) and
/// every sample name (with `_bucket`, `_sum`, `_count`).
#[derive(Debug, Default)]
pub(super) struct Exposition {
    pub(super) families: BTreeMap<String, Family>,
    pub(super) sample_names: BTreeSet<String>,
}

pub(super) fn parse_exposition(text: &str) -> Exposition {
    let mut e = Exposition::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            e.families.insert(
                name.to_owned(),
                Family {
                    kind: kind.to_owned(),
                    labels: BTreeSet::new(),
                },
            );
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        e.sample_names.insert(name.to_owned());
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|base| e.families.get(*base).is_some_and(|f| f.kind == "histogram"))
            .unwrap_or(name)
            .to_owned();
        let labels = if line[name_end..].starts_with('{') {
            label_names(&line[name_end + 1..])
        } else {
            BTreeSet::new()
        };
        if let Some(f) = e.families.get_mut(&family) {
            f.labels.extend(labels.into_iter().filter(|l| l != "le"));
        }
    }
    e
}

/// Label names of `a="x",b="y\"z"} 1`.
pub(super) fn label_names(s: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = s.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let name = name.trim_start_matches(',').trim();
        if name.is_empty() || name.starts_with('}') {
            break;
        }
        names.insert(name.to_owned());
        assert_eq!(chars.next(), Some('"'), "label value of {name} not quoted");
        let mut escaped = false;
        for c in chars.by_ref() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => break,
                _ => escaped = false,
            }
        }
        if chars.peek() == Some(&'}') {
            break;
        }
    }
    names
}

/// The differences between the catalogue and a scrape, one line each.
pub(super) fn catalogue_mismatches(
    documented: &BTreeMap<String, Family>,
    exported: &Exposition,
) -> Vec<String> {
    let exported: BTreeMap<&String, &Family> = exported
        .families
        .iter()
        .filter(|(n, _)| n.starts_with("fluxroute_"))
        .collect();
    let mut out = Vec::new();
    for (name, f) in &exported {
        match documented.get(*name) {
            None => out.push(format!(
                "{name} ({} {:?}) is exported but not in docs/metrics.md",
                f.kind, f.labels
            )),
            Some(d) if d != *f => out.push(format!(
                "{name}: docs/metrics.md says {} {:?}, /metrics has {} {:?}",
                d.kind, d.labels, f.kind, f.labels
            )),
            Some(_) => {}
        }
    }
    for name in documented.keys() {
        if !exported.contains_key(name) {
            out.push(format!(
                "{name} is in docs/metrics.md but fluxroute does not export it"
            ));
        }
    }
    out
}

#[test]
fn exposition_parser_reads_families_labels_and_histograms() {
    let text = "# HELP a_total x\n# TYPE a_total counter\na_total{x=\"1,\\\"}\",y=\"\"} 2\n\
                # TYPE h histogram\nh_bucket{c=\"a\",le=\"0.1\"} 1\nh_sum{c=\"a\"} 1\nh_count{c=\"a\"} 1\n\
                # TYPE g gauge\ng 3\n";
    let e = parse_exposition(text);
    assert_eq!(
        e.families["a_total"].labels,
        BTreeSet::from(["x".into(), "y".into()])
    );
    assert_eq!(e.families["h"].labels, BTreeSet::from(["c".into()]));
    assert_eq!(e.families["h"].kind, "histogram");
    assert!(e.families["g"].labels.is_empty());
    assert!(e.sample_names.contains("h_bucket") && e.sample_names.contains("g"));
}
