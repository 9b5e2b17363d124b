//! AWS Query parameters (`a.b.member.1.c=v&…`) into a [`Value`], within [`Limits`].
//!
//! Dotted names are rebuilt into the tree: `X.member.N` is the N-th item of list `X`,
//! `X.entry.N.key` / `X.entry.N.value` an entry of map `X`, any other segment a structure
//! member. Indexes run from 1 without gaps or repeats, each at most
//! [`Limits::max_list_len`]; a parameter given twice is an error. Every leaf is a
//! [`Value::String`]; an empty list is sent as `X=` and read so by the typed layer.

use std::collections::BTreeMap;

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::limits::{Limit, Limits};
use crate::value::Value;

/// A parameter tree as it is built, before lists and maps are recognised.
#[derive(Debug)]
enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

/// Decodes `application/x-www-form-urlencoded` parameters (a body or a query string).
///
/// # Errors
///
/// [`Error::TooLarge`] naming the bound crossed, [`Error::Malformed`] for a repeated
/// parameter, a name that is both a value and a structure, or list indexes that are not
/// `1..=N` without gaps.
pub fn decode(input: &[u8], limits: &Limits) -> Result<Value> {
    let mut budget = Budget::new(limits);
    budget.check_body(input.len())?;
    let mut root = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(input) {
        budget.take_element()?;
        budget.check_string(name.len())?;
        budget.check_string(value.len())?;
        insert(&mut root, &name, value.into_owned(), &budget)?;
    }
    build(Node::Branch(root), "", &budget, 0)
}

fn insert(
    root: &mut BTreeMap<String, Node>,
    name: &str,
    value: String,
    budget: &Budget<'_>,
) -> Result<()> {
    let segments: Vec<&str> = name.split('.').collect();
    // A list or map level takes two segments (`member.N`), a structure one.
    if segments.len() > 2 * budget.limits.max_depth {
        return Err(budget.exceeded(Limit::Depth));
    }
    if segments.iter().any(|s| s.is_empty()) {
        return Err(Error::Malformed(format!(
            "the parameter name {} has an empty segment",
            thermostat_metrics::quote::quote(name)
        )));
    }
    let conflict = || {
        Error::Malformed(format!(
            "the parameter {} is given twice or is both a value and a structure",
            thermostat_metrics::quote::quote(name)
        ))
    };
    let (last, parents) = segments.split_last().ok_or_else(conflict)?;
    let mut level = root;
    for segment in parents {
        let node = level
            .entry((*segment).to_owned())
            .or_insert_with(|| Node::Branch(BTreeMap::new()));
        level = match node {
            Node::Branch(children) => children,
            Node::Leaf(_) => return Err(conflict()),
        };
    }
    if level.contains_key(*last) {
        return Err(conflict());
    }
    level.insert((*last).to_owned(), Node::Leaf(value));
    Ok(())
}

/// Turns the items of a `member` or `entry` branch into a list, by index.
fn indexed(children: BTreeMap<String, Node>, path: &str, budget: &Budget<'_>) -> Result<Vec<Node>> {
    let mut items: Vec<Option<Node>> = Vec::new();
    for (index, node) in children {
        let n: usize = match index.parse() {
            Ok(n) if n >= 1 && !index.starts_with('0') && !index.starts_with('+') => n,
            _ => {
                return Err(Error::Malformed(format!(
                    "{}.{} is not an index 1, 2, …",
                    at(path),
                    thermostat_metrics::quote::quote(&index)
                )));
            }
        };
        budget.check_len(n)?;
        if items.len() < n {
            items.resize_with(n, || None);
        }
        items[n - 1] = Some(node);
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            item.ok_or_else(|| {
                Error::Malformed(format!(
                    "{}.{} is missing: list indexes run from 1 without gaps",
                    at(path),
                    i + 1
                ))
            })
        })
        .collect()
}

/// A parameter path for a message: whole up to 128 bytes, else its start and `…`.
fn at(path: &str) -> String {
    match path.char_indices().nth(128) {
        None => path.to_owned(),
        Some((end, _)) => format!("{}…", &path[..end]),
    }
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_owned()
    } else {
        format!("{path}.{segment}")
    }
}

fn build(node: Node, path: &str, budget: &Budget<'_>, depth: usize) -> Result<Value> {
    let mut children = match node {
        Node::Leaf(text) => return Ok(Value::String(text)),
        Node::Branch(children) => children,
    };
    budget.check_depth(depth + 1)?;
    if children.len() == 1 {
        if let Some(Node::Branch(_)) = children.get("member") {
            let Some(Node::Branch(members)) = children.remove("member") else {
                return Err(Error::Malformed(format!("{}.member", at(path))));
            };
            let list_path = join(path, "member");
            let items = indexed(members, &list_path, budget)?
                .into_iter()
                .enumerate()
                .map(|(i, item)| build(item, &format!("{list_path}.{}", i + 1), budget, depth + 1))
                .collect::<Result<_>>()?;
            return Ok(Value::List(items));
        }
        if let Some(Node::Branch(_)) = children.get("entry") {
            let Some(Node::Branch(entries)) = children.remove("entry") else {
                return Err(Error::Malformed(format!("{}.entry", at(path))));
            };
            let entry_path = join(path, "entry");
            let mut map = BTreeMap::new();
            for (i, entry) in indexed(entries, &entry_path, budget)?
                .into_iter()
                .enumerate()
            {
                let here = format!("{entry_path}.{}", i + 1);
                let Node::Branch(mut parts) = entry else {
                    return Err(Error::Malformed(format!(
                        "{} must have key and value",
                        at(&here)
                    )));
                };
                let (Some(Node::Leaf(key)), Some(value), true) =
                    (parts.remove("key"), parts.remove("value"), parts.is_empty())
                else {
                    return Err(Error::Malformed(format!(
                        "{} must have exactly a key and a value",
                        at(&here)
                    )));
                };
                let value = build(value, &format!("{here}.value"), budget, depth + 1)?;
                if map.insert(key, value).is_some() {
                    return Err(Error::Malformed(format!("{}.key repeats a key", at(&here))));
                }
            }
            return Ok(Value::Map(map));
        }
    }
    let mut map = BTreeMap::new();
    for (name, child) in children {
        let here = join(path, &name);
        let value = build(child, &here, budget, depth + 1)?;
        map.insert(name, value);
    }
    Ok(Value::Map(map))
}
