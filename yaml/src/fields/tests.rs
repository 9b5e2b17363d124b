//! Field checks: each reports with its position and goes on.

use serde::Deserialize;

use super::*;
use crate::document::{Document, Spanned};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inner {
    level: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: Option<Text>,
    size: Option<Text>,
    items: Option<Spanned<Vec<Spanned<Inner>>>>,
}

fn first_entry(text: &str) -> (Document, ErrorList) {
    (Document::parse("f.yaml", text), ErrorList::new())
}

fn sorted(errors: ErrorList) -> Vec<String> {
    match errors.finish((), &["f.yaml"]) {
        Ok(()) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn unknown_keys_are_all_reported_with_positions_and_the_rest_still_reads() {
    let (doc, mut errors) = first_entry(
        "list:\n  - name: a\n    nmae: b\n    items:\n      - {level: 1, colour: red}\n    size: 2\n",
    );
    let item = &doc.section("list").unwrap().as_sequence().unwrap()[0];
    let spec: Spec = FieldChecker::new(doc.file(), &mut errors)
        .deserialize(item, "list[0]")
        .unwrap();
    assert_eq!(spec.size.as_ref().map(|t| t.as_str()), Some("2"));
    let items = spec.items.unwrap();
    assert_eq!(items[0].level.as_ref().map(|t| t.as_str()), Some("1"));
    assert_eq!(
        sorted(errors),
        [
            "f.yaml:3:5: list[0].nmae: unknown field \"nmae\" (did you mean \"name\"?); expected one of: name, size, items",
            "f.yaml:5:20: list[0].items[0].colour: unknown field \"colour\"; expected one of: level",
        ]
    );
}

#[test]
fn a_shape_error_is_reported_once_and_the_entry_dropped() {
    let (doc, mut errors) = first_entry("list:\n  - {name: [a, b], size: {x: 1}}\n  - just text\n");
    let items = doc.section("list").unwrap().as_sequence().unwrap();
    let mut check = FieldChecker::new(doc.file(), &mut errors);
    assert!(check.deserialize::<Spec>(&items[0], "list[0]").is_none());
    assert!(check.deserialize::<Spec>(&items[1], "list[1]").is_none());
    assert_eq!(
        sorted(errors),
        [
            "f.yaml:2:12: list[0].name: must be a string (got a sequence)",
            "f.yaml:3:5: list[1]: must be a map of fields",
        ]
    );
}

#[test]
fn numbers_words_and_booleans() {
    let (doc, mut errors) = first_entry(
        "e: {name: x, size: 12, items: []}\nf: {name: 1_000.5e1, size: -3}\ng: {name: .nan, size: many}\n",
    );
    let read = |k: &str, errors: &mut ErrorList| -> Spec {
        FieldChecker::new("f.yaml", errors)
            .deserialize(doc.section(k).unwrap(), k)
            .unwrap()
    };
    let (e, f, g) = (
        read("e", &mut errors),
        read("f", &mut errors),
        read("g", &mut errors),
    );
    let mut check = FieldChecker::new("f.yaml", &mut errors);
    let size = |s: &Spec| s.size.clone().unwrap();
    assert_eq!(check.count(&size(&e), "e.size", 1, 20), Some(12));
    assert_eq!(check.count(&size(&e), "e.size", 13, u32::MAX), None);
    assert_eq!(check.count(&size(&e), "e.size", 1, 10), None);
    assert_eq!(check.integer(&size(&f), "f.size", -5, 5), Some(-3));
    assert_eq!(check.integer(&size(&f), "f.size", 0, 5), None);
    assert_eq!(check.integer(&size(&g), "g.size", 0, 5), None);
    assert_eq!(
        check.float(f.name.as_ref().unwrap(), "f.name"),
        Some(10_005.0)
    );
    assert_eq!(check.float(g.name.as_ref().unwrap(), "g.name"), None);
    assert!(!check.boolean(&e.name, "e.name", false));
    assert!(check.boolean(&None, "none", true));
    assert_eq!(check.bounded_text(&g.size, "g.size", 3), "many");
    assert_eq!(check.error_count(), 7);
    assert_eq!(
        sorted(errors),
        [
            "f.yaml:1:11: e.name: must be true or false (got x)",
            "f.yaml:1:20: e.size: must be at least 13 (got 12)",
            "f.yaml:1:20: e.size: must be between 1 and 10 (got 12)",
            "f.yaml:2:28: f.size: must be between 0 and 5 (got -3)",
            "f.yaml:3:11: g.name: must be a finite number (got .nan)",
            "f.yaml:3:23: g.size: must be a whole number (got many)",
            "f.yaml:3:23: g.size: must be at most 3 characters (got 4)",
        ]
    );
}

#[test]
fn maps_read_key_by_key() {
    let (doc, mut errors) = first_entry(
        "s:\n  host: \" a \"\n  port: ~\n  list: null\n  other: 1\n  timeout: 0.5\n  bad: [1]\n",
    );
    let mut check = FieldChecker::new(doc.file(), &mut errors);
    let allowed = ["host", "port", "list", "timeout", "bad", "absent"];
    let f = check.map(doc.section("s").unwrap(), "s", &allowed).unwrap();
    assert_eq!(
        check.value(&f, "host", "s"),
        Some(("a".to_owned(), Pos::new(2, 9)))
    );
    assert_eq!(check.value(&f, "port", "s"), None);
    assert_eq!(
        check.required_value(&f, "absent", "s", Pos::new(1, 1)),
        None
    );
    assert_eq!(
        check.seconds(&f, "timeout", "s", 0.001, 10.0),
        Some(Duration::from_millis(500))
    );
    assert_eq!(check.seconds(&f, "bad", "s", 0.0, 1.0), None);
    let list = f.get("list").unwrap().0;
    assert!(
        check
            .list(list, "s.list", EmptyList::BlankTildeOrNull)
            .is_empty()
    );
    assert!(
        check
            .list(list, "s.list", EmptyList::BlankOrTilde)
            .is_empty()
    );
    assert_eq!(f.key_pos("timeout"), Some(Pos::new(6, 3)));
    assert!(f.contains("bad") && !f.contains("other"));
    assert!(check.map(list, "s.list", &[]).is_none());
    assert_eq!(
        sorted(errors),
        [
            "f.yaml:1:1: s.absent: is required",
            "f.yaml:4:9: s.list: must be a list",
            "f.yaml:4:9: s.list: must be a map of fields",
            "f.yaml:5:3: s.other: unknown field \"other\"; expected one of: host, port, list, timeout, bad, absent",
            "f.yaml:7:8: s.bad: must be a single value",
        ]
    );
}

#[test]
fn suggestions_name_the_closest_known_name() {
    assert_eq!(
        did_you_mean("web-hihg-cpu", ["web-high-cpu", "db-cpu"]),
        " (did you mean \"web-high-cpu\"?)"
    );
    assert_eq!(did_you_mean("zzz", ["web-high-cpu"]), "");
    assert_eq!(
        unknown_field_message("thresold", &["threshold", "unit"]),
        "unknown field \"thresold\" (did you mean \"threshold\"?); expected one of: threshold, unit"
    );
}
