use proptest::prelude::*;

use super::*;

fn ok(text: &str) -> Line<'_> {
    parse_line(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?} rejected: {e}"))
}

fn err(text: &str) -> String {
    match parse_line(text.as_bytes()) {
        Ok(line) => panic!("{text:?} accepted: {line:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn accepts_and_locates_parts() {
    let l = ok("cpu,host=a,region=b usage=1.5,n=3i,s=\"x y\",b=t 1500000000");
    assert_eq!(l.measurement_raw(), b"cpu");
    assert_eq!(l.key(), b"cpu,host=a,region=b");
    assert_eq!(l.fields(), b"usage=1.5,n=3i,s=\"x y\",b=t");
    assert_eq!(l.timestamp, Some(1_500_000_000));
    assert!(l.tags_sorted);
    let tags: Vec<_> = l.tags().collect();
    assert_eq!(
        tags,
        vec![(&b"host"[..], &b"a"[..]), (&b"region"[..], &b"b"[..])]
    );

    let l = ok("  \tcpu  \t v=1  ");
    assert_eq!(l.text, b"cpu  \t v=1  ");
    assert_eq!(l.key(), b"cpu");
    assert_eq!(l.fields(), b"v=1");
    assert_eq!(l.timestamp, None);
    assert!(!ok("cpu,b=1,a=2 v=1").tags_sorted);
}

#[test]
fn escapes() {
    assert_eq!(ok("c\\ p\\,u v=1").measurement_raw(), b"c\\ p\\,u");
    assert_eq!(&*ok("c\\ p\\,u\\=x\\\"y v=1").measurement(), b"c p,u=x\"y");
    assert_eq!(ok("cpu,a\\ b=c\\,d v=1").key(), b"cpu,a\\ b=c\\,d");
    assert_eq!(ok("cpu,a\\=b=c v=1").tags().next().unwrap().0, b"a\\=b");
    assert_eq!(ok("cpu f\\ k\\,x\\=y=1").fields(), b"f\\ k\\,x\\=y=1");
    assert_eq!(ok("cpu s=\"a\\\"b\\\\\"").fields(), b"s=\"a\\\"b\\\\\"");
    // Quirk: the first byte of a tag value is never examined.
    assert_eq!(ok("cpu,a==b v=1").key(), b"cpu,a==b");
    // Quirk: in the key, a byte after a backslash is escaped even if that backslash is too.
    assert_eq!(ok("cpu\\\\,a=b v=1").measurement_raw(), b"cpu\\\\,a=b");
}

#[test]
fn rejects_with_influxd_reasons() {
    let cases: &[(&str, &str)] = &[
        (",cpu v=1", "missing measurement"),
        ("cpu", "missing fields"),
        ("cpu,a=b", "missing fields"),
        ("cpu ", "invalid field format"),
        ("cpu v", "invalid field format"),
        ("cpu v=1,", "invalid field format"),
        ("cpu,a v=1", "missing tag value"),
        ("cpu,a= v=1", "missing tag value"),
        ("cpu,=a v=1", "missing tag key"),
        ("cpu, v=1", "missing tag key"),
        ("cpu,a=b=c v=1", "invalid tag format"),
        ("cpu,a=1,a=2 v=1", "duplicate tags"),
        ("cpu,b=1,a=2,b=3 v=1", "duplicate tags"),
        ("cpu =1", "missing field key"),
        ("cpu v=1,=2", "missing field key"),
        ("cpu v=", "missing field value"),
        ("cpu v=,w=1", "missing field value"),
        ("cpu v=1u", "invalid number"),
        ("cpu v=NaN", "invalid number"),
        ("cpu v=1.1.1", "invalid number"),
        ("cpu v=1i5", "invalid number"),
        ("cpu v=1.5i", "invalid number"),
        ("cpu v=-", "invalid number"),
        ("cpu v=1\r", "invalid number"),
        ("cpu v=Inf", "invalid boolean"),
        ("cpu v=+1", "invalid boolean"),
        ("cpu v=tru", "invalid boolean"),
        ("cpu v=1e400", "invalid float"),
        ("cpu v=1e", "invalid float"),
        ("cpu v=\"abc", "unbalanced quotes"),
        ("cpu v=1 +5", "bad timestamp"),
        ("cpu v=1 1.5", "bad timestamp"),
        ("cpu v=1 1\r", "bad timestamp"),
        ("cpu v=1 1 2", "point is invalid"),
        (
            "cpu v=1 -",
            "strconv.ParseInt: parsing \"-\": invalid syntax",
        ),
        (
            "cpu v=1 99999999999999999999",
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range",
        ),
        (
            "cpu v=9223372036854775808i",
            "unable to parse integer 9223372036854775808: strconv.ParseInt: parsing \
             \"9223372036854775808\": value out of range",
        ),
        ("m v\\\\=1i 5", "invalid value: field-key=v\\\\=1i"),
        ("weird s=\"x\"n=1,bFLSE", "invalid value: field-key=bFLSE"),
    ];
    for (line, reason) in cases {
        assert_eq!(err(line), *reason, "{line:?}");
    }
}

#[test]
fn accepts_influxd_oddities() {
    for line in [
        "cpu v=1,v=2",         // duplicate fields
        "cpu time=1",          // parses; storage drops it (drop_reason)
        "cpu _v=1",            // leading underscore
        "cpu v=.5,w=5.,x=-.5", // short floats
        "cpu v=1E-3,w=1e+3",   // exponents
        "cpu v=1e-400",        // underflow is fine
        "cpu v=\"a\"b",        // bytes after a closing quote
        "cpu \t=1",            // empty field key after a tab
        "cpu v=1 \nrest",      // no timestamp: the rest is ignored
        "cpu v=-9223372036854775808i",
        "cpu v=t,w=T,x=true,y=True,z=TRUE,a=f,b=F,c=false,d=False,e=FALSE",
    ] {
        ok(line);
    }
}

#[test]
fn key_length_limits() {
    let m = "a".repeat(65535);
    ok(&format!("{} v=1", &m[..65530]));
    assert_eq!(
        err(&format!("{m}a v=1")),
        "max key length exceeded: 65536 > 65535"
    );
    assert_eq!(
        err(&format!("{} abcdef=1", &m[..65530])),
        "max key length exceeded: 65540 > 65535"
    );
}

#[test]
fn splitting_and_comments() {
    let body = b"# comment\n\n  \t\na v=1\r\nb v=\"x\ny\" 1\n  c v=1\\\nd v=2\n  # c2 a=\"\n";
    let items: Vec<_> = lines(body).collect();
    assert_eq!(items.len(), 3, "{items:?}");
    let e = items[0].as_ref().unwrap_err();
    assert_eq!(e.to_string(), "unable to parse 'a v=1\r': invalid number");
    assert_eq!(items[1].as_ref().unwrap().fields(), b"v=\"x\ny\"");
    let e = items[2].as_ref().unwrap_err();
    assert_eq!(e.text, b"c v=1\\\nd v=2");
}

#[test]
fn lines_with_precision_checks_range_where_influxd_does() {
    let body = b"p v=1 99999999 x";
    let e = lines(body).next().unwrap().unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::InvalidPoint);
    let e = lines(body)
        .with_precision(Precision::Hour)
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::TimeOutsideRange);
}

#[test]
fn precision_parsing() {
    assert_eq!(Precision::from_v1(""), Some(Precision::Nanosecond));
    assert_eq!(Precision::from_v1("ns"), Some(Precision::Nanosecond));
    assert_eq!(Precision::from_v1("us"), Some(Precision::Microsecond));
    assert_eq!(Precision::from_v1("µ"), Some(Precision::Microsecond));
    assert_eq!(Precision::from_v1("h"), Some(Precision::Hour));
    assert_eq!(Precision::from_v1("x"), None);
    assert_eq!(Precision::from_v2("us"), Some(Precision::Microsecond));
    assert_eq!(Precision::from_v2("u"), None);
    assert_eq!(Precision::from_v2("m"), None);
    assert_eq!(Precision::from_v1_lenient("us"), Precision::Nanosecond);
    assert_eq!(Precision::from_v1_lenient("u"), Precision::Microsecond);
    assert_eq!(Precision::Minute.nanos_per_unit(), 60_000_000_000);
}

#[test]
fn timestamp_conversion() {
    use Precision::*;
    assert_eq!(timestamp_nanos(Some(5), Second, 0), Ok(5_000_000_000));
    assert_eq!(timestamp_nanos(Some(-5), Hour, 0), Ok(-18_000_000_000_000));
    assert_eq!(
        timestamp_nanos(Some(MAX_NANOS), Nanosecond, 0),
        Ok(MAX_NANOS)
    );
    assert_eq!(
        timestamp_nanos(Some(MIN_NANOS), Nanosecond, 0),
        Ok(MIN_NANOS)
    );
    for (ts, p) in [
        (i64::MAX, Nanosecond),
        (i64::MIN, Nanosecond),
        (MIN_NANOS - 1, Nanosecond),
        (9_223_372_037, Second),
        (-9_223_372_037, Second),
        (2_562_048, Hour),
        (i64::MAX / 1000 + 1, Microsecond),
    ] {
        let e = timestamp_nanos(Some(ts), p, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "time outside range -9223372036854775806 - 9223372036854775806"
        );
    }
    // Receive time is truncated to the precision (floor, also before 1970).
    assert_eq!(timestamp_nanos(None, Nanosecond, 1_234_567), Ok(1_234_567));
    assert_eq!(timestamp_nanos(None, Microsecond, 1_234_567), Ok(1_234_000));
    assert_eq!(timestamp_nanos(None, Second, -1), Ok(-1_000_000_000));
}

#[test]
fn receive_time_outside_influxd_range_is_an_error_not_an_overflow() {
    // Found by the line_protocol fuzz target: flooring i64::MIN to a unit overflowed.
    use Precision::*;
    for (receive, p) in [
        (i64::MIN, Second),
        (i64::MIN, Hour),
        (MIN_NANOS, Microsecond),
        (i64::MIN, Nanosecond),
        (i64::MAX, Nanosecond),
    ] {
        assert_eq!(
            timestamp_nanos(None, p, receive),
            Err(ParseErrorKind::TimeOutsideRange),
            "{receive} {p:?}"
        );
    }
    assert_eq!(timestamp_nanos(None, Nanosecond, MIN_NANOS), Ok(MIN_NANOS));
    assert_eq!(timestamp_nanos(None, Nanosecond, MAX_NANOS), Ok(MAX_NANOS));
    assert_eq!(
        timestamp_nanos(None, Second, MAX_NANOS),
        Ok(MAX_NANOS - MAX_NANOS % 1_000_000_000)
    );
}

#[test]
fn normalization() {
    let mut out = Vec::new();
    let l = ok("cpu,a=b v=1,s=\"x\" 17");
    write_normalized(&l, 17_000, &mut out);
    let l = ok("cpu \t v=1");
    write_normalized(&l, -9_223_372_036_854_775_806, &mut out);
    let l = ok("cpu v=1");
    write_normalized(&l, 0, &mut out);
    write_normalized(&l, i64::MAX, &mut out);
    write_normalized(&l, i64::MIN, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "cpu,a=b v=1,s=\"x\" 17000\ncpu \t v=1 -9223372036854775806\ncpu v=1 0\n\
         cpu v=1 9223372036854775807\ncpu v=1 -9223372036854775808\n"
    );
    for v in [
        0,
        1,
        9,
        10,
        99,
        100,
        101,
        12345,
        -1,
        -10,
        -99,
        -100,
        1 << 40,
    ] {
        let mut buf = [0u8; 20];
        assert_eq!(format_i64(v, &mut buf), v.to_string().as_bytes());
    }
}

#[test]
fn normalized_lines_read_back_as_themselves() {
    // Found by fuzzing the ingest's encoding. Each body holds one valid line; its normalized
    // form must read back, after another normalized line, as the same key, fields and time.
    for (body, normalized) in [
        // Blanks before the fields are kept: `=1` after a NUL is a field with an empty key.
        (&b"m \0=1"[..], &b"m \0=1 7\n"[..]),
        (b"m \t=1", b"m \t=1 7\n"),
        // A newline inside a string value.
        (b"m s=\"a\nb\"", b"m s=\"a\nb\" 7\n"),
        // An escaped backslash at the end is fine.
        (b"m v=\"a\"\\\\", b"m v=\"a\"\\\\ 7\n"),
    ] {
        let line = lines(body).next().unwrap().unwrap();
        assert!(is_normalizable(&line), "{body:?}");
        let mut out = b"x v=1 1\n".to_vec();
        write_normalized(&line, 7, &mut out);
        assert_eq!(&out[8..], normalized);
        let back: Vec<_> = lines(&out).map(Result::unwrap).collect();
        assert_eq!(back.len(), 2, "{out:?}");
        assert_eq!(
            (back[1].key(), back[1].fields(), back[1].timestamp),
            (line.key(), line.fields(), Some(7))
        );
    }
    // A field set ending in a backslash would escape the space before the timestamp.
    let line = ok("m v=\"a\"\\");
    assert_eq!(line.fields(), b"v=\"a\"\\");
    assert!(!is_normalizable(&line));
    // A line the splitter kept whole only because the body ended inside a quote it counted
    // would swallow the next line.
    let line = lines(b" a\"=\"\nb v=1").next().unwrap().unwrap();
    assert_eq!(line.key(), b"a\"=\"\nb");
    assert!(!is_normalizable(&line));
    // Only its leading space made the splitter count the quotes around this newline.
    let line = lines(b" a\"=\"\n\"b v=1").next().unwrap().unwrap();
    assert_eq!(line.key(), b"a\"=\"\n\"b");
    assert!(!is_normalizable(&line));
}

#[test]
fn series_hash_canonicalizes_tag_order() {
    let a = ok("cpu,host=a,region=b,zone=c v=1");
    let b = ok("cpu,zone=c,host=a,region=b w=2i 5");
    let c = ok("cpu,region=b,zone=c,host=a v=1");
    assert!(a.tags_sorted && !b.tags_sorted && !c.tags_sorted);
    assert_eq!(series_key_hash(&a), series_key_hash(&b));
    assert_eq!(series_key_hash(&a), series_key_hash(&c));
    assert_eq!(
        series_key_hash(&a),
        xxhash_rust::xxh3::xxh3_64(b"cpu,host=a,region=b,zone=c")
    );
    let mut key = Vec::new();
    canonical_series_key(&c, &mut key);
    assert_eq!(key, b"cpu,host=a,region=b,zone=c");
    assert_ne!(series_key_hash(&a), series_key_hash(&ok("cpu,host=a v=1")));
    // Escaped commas stay inside their tag.
    let d = ok("m,b=x\\,a,a=2 v=1");
    key.clear();
    canonical_series_key(&d, &mut key);
    assert_eq!(key, b"m,a=2,b=x\\,a");
    // Pinned value: changing it would move every series to another partition.
    assert_eq!(
        series_key_hash(&ok("cpu,host=a v=1")),
        0xaf89_4787_4077_a8bf_u64
    );
}

#[test]
fn storage_drops_and_write_outcome() {
    assert_eq!(
        drop_reason(&ok("c\\ d,time=1 v=1")).unwrap().to_string(),
        "invalid tag key: input tag \"time\" on measurement \"c d\" is invalid"
    );
    assert_eq!(
        drop_reason(&ok("x time=1,time=2")).unwrap().to_string(),
        "invalid field name: input field \"time\" on measurement \"x\" is invalid"
    );
    assert_eq!(drop_reason(&ok("x time=1,v=2")), None);
    // Found by fuzzing against the reference: influxd echoes the measurement's raw bytes, so its
    // JSON shows each invalid UTF-8 byte as \ufffd (influxd 1.6.7 answered `invalid field name:
    // input field "time" on measurement "m\ufffd\ufffd\ufffd"`). fluxroute drops a key that is not
    // UTF-8 first, echoing it the same way.
    let mut o = WriteOutcome::new();
    for item in lines(b"m\xec\xa1\xdf time=1\nok v=1\n") {
        o.record_line(&item.unwrap());
    }
    assert_eq!(
        String::from_utf8(o.error_body().unwrap()).unwrap(),
        "{\"error\":\"partial write: key contains invalid unicode: \
         \\\"m\\ufffd\\ufffd\\ufffd\\\" dropped=1\"}\n"
    );
    assert_eq!(
        o.error_message().unwrap(),
        "partial write: key contains invalid unicode: \"m\u{fffd}\u{fffd}\u{fffd}\" dropped=1"
    );
    assert_eq!(drop_reason(&ok("x,ti\\me=1 v=2")), None);
    assert_eq!(drop_reason(&ok("x,a=time v=2")), None);

    let outcome = |body: &[u8]| {
        let mut o = WriteOutcome::new();
        for item in lines(body) {
            match item {
                Ok(l) => {
                    o.record_line(&l);
                }
                Err(e) => o.record_error(&e),
            }
        }
        o.error_message()
    };
    assert_eq!(outcome(b"a v=1\n"), None);
    assert_eq!(
        outcome(b"b v=x\nd v=y").unwrap(),
        "unable to parse 'b v=x': invalid boolean\nunable to parse 'd v=y': invalid boolean"
    );
    assert_eq!(
        outcome(b"a v=1\nb v=x\nd v=y").unwrap(),
        "partial write: unable to parse 'b v=x': invalid boolean\n\
         unable to parse 'd v=y': invalid boolean dropped=0"
    );
    assert_eq!(
        outcome(b"a v=1\ne time=1\nb v=x\nc,time=1 v=1\n").unwrap(),
        "partial write: invalid tag key: input tag \"time\" on measurement \"c\" is invalid \
         dropped=2"
    );
}

#[test]
fn keys_with_invalid_utf8_are_dropped_before_they_reach_a_cluster() {
    let line = |b: &'static [u8]| parse_line(b).unwrap();
    let reason = |b: &'static [u8]| drop_reason(&line(b)).map(|r| r.to_string());
    assert_eq!(
        reason(b"m\xff,t=a v=1 1").unwrap(),
        "key contains invalid unicode: \"m\u{fffd},t=a\""
    );
    assert!(reason(b"m,t\xfe=a v=1").is_some());
    assert!(reason(b"m,t=a\xfe v=1").is_some());
    assert_eq!(
        reason(b"m v=1,k\xff=2").unwrap(),
        "key contains invalid unicode: \"k\u{fffd}\""
    );
    // Valid multi-byte UTF-8 anywhere, and invalid bytes inside string field values, are fine.
    assert_eq!(reason("m\u{e9},t=\u{1f600} v\u{fc}=1".as_bytes()), None);
    assert_eq!(reason(b"m v=\"\xff\xfe\""), None);
    // Counted like the other storage drops: the first key-level reason in body order.
    let mut o = WriteOutcome::new();
    for item in lines(b"a v=1\nb\xff v=1\nc,time=1 v=1\n") {
        o.record_line(&item.unwrap());
    }
    assert_eq!(o.written(), 1);
    assert_eq!(
        o.error_message().unwrap(),
        "partial write: key contains invalid unicode: \"b\u{fffd}\" dropped=2"
    );
}

#[test]
fn json_rendering_matches_go() {
    let mut out = Vec::new();
    append_json_string(
        b"a\"b\\c\n\r\t\x01<>&\xff\xe2\x82\xc3\xa9\xe2\x80\xa8",
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u003c\\u003e\\u0026\\ufffd\\ufffd\\ufffdé\\u2028\""
    );
}

#[test]
fn text_bytes_is_zero_copy() {
    let body = Bytes::from_static(b"a v=1\nbb v=2\n");
    let second = lines(&body).nth(1).unwrap().unwrap();
    let b = second.text_bytes(&body);
    assert_eq!(&b[..], b"bb v=2");
    assert_eq!(b.as_ptr(), body[6..].as_ptr());
}

// ---- property tests ----

/// A key-section token: letters plus escaped specials (escaping as influxd clients do).
fn key_token() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            6 => "[a-zA-Z0-9_.:/-]",
            1 => Just("\\ ".to_string()),
            1 => Just("\\,".to_string()),
            1 => Just("\\=".to_string()),
            1 => Just("é".to_string()),
        ],
        1..8,
    )
    .prop_map(|parts| parts.concat())
}

fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| format!("{v}i")),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| format!("{v:?}")),
        (-1.0e6f64..1.0e6).prop_map(|v| format!("{v:e}")),
        prop_oneof![
            Just("t"),
            Just("T"),
            Just("true"),
            Just("True"),
            Just("TRUE"),
            Just("f"),
            Just("F"),
            Just("false"),
            Just("False"),
            Just("FALSE")
        ]
        .prop_map(str::to_string),
        proptest::collection::vec(
            prop_oneof![
                4 => "[a-z ,=]",
                1 => Just("\\\"".to_string()),
                1 => Just("\\\\".to_string()),
                1 => Just("\n".to_string()),
            ],
            0..10
        )
        .prop_map(|parts| format!("\"{}\"", parts.concat())),
    ]
}

prop_compose! {
    fn valid_line()(
        measurement in key_token(),
        tags in proptest::collection::btree_map(key_token(), key_token(), 0..5),
        reverse in any::<bool>(),
        fields in proptest::collection::vec((key_token(), field_value()), 1..5),
        ts in proptest::option::of(-4_000_000_000_000_000_000i64..4_000_000_000_000_000_000),
    ) -> (String, Option<i64>) {
        let mut tags: Vec<_> = tags.into_iter().collect();
        if reverse {
            tags.reverse();
        }
        let mut line = measurement;
        for (k, v) in &tags {
            line.push(',');
            line.push_str(k);
            line.push('=');
            line.push_str(v);
        }
        line.push(' ');
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&fields.join(","));
        if let Some(ts) = ts {
            line.push_str(&format!(" {ts}"));
        }
        (line, ts)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_lines_are_accepted_and_round_trip((text, ts) in valid_line()) {
        let items: Vec<_> = lines(text.as_bytes()).collect();
        prop_assert_eq!(items.len(), 1);
        let line = items[0].clone().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(line.timestamp, ts);
        let ns = timestamp_nanos(line.timestamp, Precision::Nanosecond, 42).unwrap();
        let mut out = Vec::new();
        write_normalized(&line, ns, &mut out);
        let body = out.clone();
        let again: Vec<_> = lines(&body).collect();
        prop_assert_eq!(again.len(), 1);
        let again = again[0].clone().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.key(), line.key());
        prop_assert_eq!(again.fields(), line.fields());
        prop_assert_eq!(again.timestamp, Some(ns));
        prop_assert_eq!(series_key_hash(&again), series_key_hash(&line));
        // Canonical key: sorted tags hash like the canonical text.
        let mut key = Vec::new();
        canonical_series_key(&line, &mut key);
        prop_assert_eq!(series_key_hash(&line), xxhash_rust::xxh3::xxh3_64(&key));
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        for item in lines(&body).with_precision(Precision::Second) {
            match item {
                Ok(line) => {
                    let mut out = Vec::new();
                    write_normalized(&line, 1, &mut out);
                    let _ = series_key_hash(&line);
                    let _ = drop_reason(&line);
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        let _ = parse_line(&body);
    }

    #[test]
    fn tricky_bytes_never_panic(body in proptest::collection::vec(
        prop_oneof![Just(b'\\'), Just(b'"'), Just(b' '), Just(b','), Just(b'='), Just(b'\n'),
                    Just(b'1'), Just(b'i'), Just(b'-'), Just(b'.'), Just(b'e'), Just(b't'),
                    Just(b'a'), Just(b'\t'), Just(b'#')],
        0..60,
    )) {
        let mut outcome = WriteOutcome::new();
        for item in lines(&body) {
            match item {
                Ok(line) => {
                    outcome.record_line(&line);
                    let mut key = Vec::new();
                    canonical_series_key(&line, &mut key);
                    let _ = line.tags().count();
                }
                Err(e) => outcome.record_error(&e),
            }
        }
        let _ = outcome.error_body();
    }
}

// ---- differential: the scanner against the slow reference (reference.rs) ----

const RECEIVE_NANOS: i64 = 1_700_000_000_123_456_789;

fn precisions() -> impl Strategy<Value = Option<Precision>> {
    proptest::option::of(proptest::sample::select(vec![
        Precision::Nanosecond,
        Precision::Microsecond,
        Precision::Millisecond,
        Precision::Second,
        Precision::Minute,
        Precision::Hour,
    ]))
}

/// Bodies made of the bytes and tokens the grammar cares about.
fn tricky_body() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => proptest::sample::select(b"\\\" ,=\n\t\r\x000123456789.-+eEiutfTFNna#x".to_vec())
            .prop_map(|b| vec![b]),
        1 => proptest::sample::select(vec![
            "cpu", "time", "true", "False", "1i", "-1.5e-3", "1e400", " 1500000000",
            "\"s\"", "9223372036854775808", "-9223372036854775808", "\\\\", "a=b",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    proptest::collection::vec(token, 0..48).prop_map(|parts| parts.concat())
}

/// A valid line with a few bytes inserted, replaced or removed.
fn mutated_line() -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        any::<proptest::sample::Index>(),
        0..3u8,
        proptest::sample::select(b"\\\" ,=\n\t0123456789.-eEiutfT#".to_vec()),
    );
    (valid_line(), proptest::collection::vec(edit, 1..4)).prop_map(|((line, _), edits)| {
        let mut bytes = line.into_bytes();
        for (at, op, b) in edits {
            let at = at.index(bytes.len() + 1);
            match op {
                0 => bytes.insert(at, b),
                1 if at < bytes.len() => bytes[at] = b,
                _ if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.push(b),
            }
        }
        bytes
    })
}

fn agree(body: &[u8], precision: Option<Precision>) {
    if let Err(e) = reference::compare(body, precision, RECEIVE_NANOS) {
        panic!(
            "scanner and reference disagree on {:?} (precision {precision:?}): {e}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn reference_agrees_on_the_documented_cases() {
    let bodies: &[&[u8]] = &[
        b"cpu,host=a,region=b usage=1.5,n=3i,s=\"x y\",b=t 1500000000",
        b"  \tcpu  \t v=1  ",
        b"cpu,a==b v=1",
        b"cpu\\\\,a=b v=1",
        b"m v\\\\=1i 5",
        b"weird s=\"x\"n=1,bFLSE",
        b"cpu v=1 \nrest",
        b"cpu \t=1",
        b"# comment\n\n  \t\na v=1\r\nb v=\"x\ny\" 1\n  c v=1\\\nd v=2\n  # c2 a=\"\n",
        b"p v=1 99999999 x",
        b"a v=1\ne time=1\nb v=x\nc,time=1 v=1\n",
        b"x time=1,time=2\nc\\ d,time=1 v=1",
        b"m,b=x\\,a,a=2 v=1",
        b"cpu,zone=c,host=a,region=b w=2i 5",
        b"cpu v=1 -",
        b"cpu v=9223372036854775808i",
        b"a v=1\\",
        b"\\",
    ];
    for body in bodies {
        for p in [None, Some(Precision::Nanosecond), Some(Precision::Hour)] {
            agree(body, p);
        }
    }
    let long = format!("{} abcdef=1", "a".repeat(65530));
    agree(long.as_bytes(), None);
    let long = format!("{}a v=1", "a".repeat(65535));
    agree(long.as_bytes(), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn reference_agrees_on_tricky_bodies(body in tricky_body(), p in precisions()) {
        agree(&body, p);
    }

    #[test]
    fn reference_agrees_on_mutated_lines(body in mutated_line(), p in precisions()) {
        agree(&body, p);
    }

    #[test]
    fn reference_agrees_on_valid_lines((text, _) in valid_line(), p in precisions()) {
        agree(text.as_bytes(), p);
    }
}

#[test]
fn timestamps_of_every_length_parse_exactly() {
    // Every length from 1 to 19 digits (eight at a time past the first len % 8), with and
    // without a sign and with leading zeros, and the i64 limits.
    let mut cases: Vec<String> = (1..=19)
        .map(|n| "1987654321012345678"[..n].to_owned())
        .collect();
    cases.extend(
        [
            "0",
            "00000000",
            "0000000000000000001",
            "-1",
            "-12345678",
            "10000000",
        ]
        .map(String::from),
    );
    for t in &cases {
        let want: i64 = t.parse().unwrap();
        assert_eq!(ok(&format!("m v=1 {t}")).timestamp, Some(want), "{t}");
    }
    assert_eq!(ok("m v=1 9223372036854775807").timestamp, Some(i64::MAX));
    assert_eq!(ok("m v=1 -9223372036854775808").timestamp, Some(i64::MIN));
    assert!(parse_line(b"m v=1 9223372036854775808").is_err());
    assert!(parse_line(b"m v=1 9999999999999999999").is_err());
}

#[test]
fn timestamps_with_any_byte_in_any_place_agree_with_the_reference() {
    // The timestamp scan checks eight bytes at a time for digits: every byte value at every
    // place of a 19-digit timestamp (signed and not) must be judged as byte by byte.
    for base in ["m v=1 1234567890123456789", "m v=1 -123456789012345678"] {
        let at = base.len() - 19;
        for k in at..base.len() {
            for b in 0..=255u8 {
                let mut body = base.as_bytes().to_vec();
                body[k] = b;
                agree(&body, None);
                agree(&body, Some(Precision::Second));
            }
        }
    }
}
