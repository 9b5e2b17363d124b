//! The checks of composite alarms that need the whole set: rule references, suppressors
//! and cycles (reference §3.10), and the order composites are evaluated in.

use std::collections::HashMap;

use thermostat_yaml::ErrorList;

use super::suggest;
use crate::error::{ConfigError, Pos, Rule};
use crate::model::AlarmSet;
use crate::raw::{self, pos};

/// Checks rule references, suppressors and cycles; orders composites so that each comes
/// after the composites it refers to.
pub(super) fn check(
    set: &mut AlarmSet,
    rule_pos: &[(String, Pos, String)],
    raws: &[raw::AlarmFile],
    defined: &HashMap<String, (String, Pos)>,
    errors: &mut ErrorList,
) {
    let where_of = |name: &str| {
        rule_pos
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, p, f)| (f.clone(), *p))
            .unwrap_or_default()
    };
    // Names of entries that failed validation still count as defined, so that one
    // mistake is not reported again at every reference.
    let known = |n: &str| defined.contains_key(n);
    let mut bad = Vec::new();
    for c in &set.composites {
        let (file, p) = where_of(&c.name);
        for r in c.rule.references() {
            if !known(r) {
                errors.push(ConfigError {
                    file: file.clone(),
                    pos: p,
                    path: format!("composite_alarms.{}.alarm_rule", c.name),
                    rule: Rule::Expression,
                    message: format!("refers to unknown alarm {r:?}{}", suggest(r, set)),
                });
                bad.push(c.name.clone());
            }
        }
        if let Some(s) = &c.suppressor {
            let sp = raws
                .iter()
                .flat_map(|f| f.composite_alarms.iter().map(move |e| (f, e)))
                .find(|(_, e)| e.spec.name.as_ref().is_some_and(|n| n.as_str() == c.name))
                .and_then(|(_, e)| e.spec.actions_suppressor.as_ref())
                .and_then(|sp| sp.alarm.as_ref().map(pos))
                .unwrap_or(p);
            let problem = if s.alarm == c.name {
                Some("must not be the composite alarm itself".to_owned())
            } else if !known(&s.alarm) {
                Some(format!(
                    "refers to unknown alarm {:?}{}",
                    s.alarm,
                    suggest(&s.alarm, set)
                ))
            } else {
                None
            };
            if let Some(m) = problem {
                errors.push(ConfigError {
                    file: file.clone(),
                    pos: sp,
                    path: format!("composite_alarms.{}.actions_suppressor.alarm", c.name),
                    rule: Rule::Expression,
                    message: m,
                });
            }
        }
    }
    // Cycles: depth-first search over composite → composite references.
    let idx: HashMap<&str, usize> = set
        .composites
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = set
        .composites
        .iter()
        .map(|c| {
            c.rule
                .references()
                .iter()
                .filter_map(|r| idx.get(r).copied())
                .collect()
        })
        .collect();
    let mut mark = vec![0u8; edges.len()]; // 0 new, 1 on stack, 2 done
    let mut order = Vec::new();
    let mut reported: Vec<Vec<usize>> = Vec::new();
    fn visit(
        i: usize,
        edges: &[Vec<usize>],
        mark: &mut [u8],
        stack: &mut Vec<usize>,
        order: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        mark[i] = 1;
        stack.push(i);
        for &j in &edges[i] {
            if mark[j] == 1 {
                let from = stack.iter().position(|&k| k == j).unwrap_or(0);
                cycles.push(stack[from..].to_vec());
            } else if mark[j] == 0 {
                visit(j, edges, mark, stack, order, cycles);
            }
        }
        stack.pop();
        mark[i] = 2;
        order.push(i);
    }
    for i in 0..edges.len() {
        if mark[i] == 0 {
            visit(
                i,
                &edges,
                &mut mark,
                &mut Vec::new(),
                &mut order,
                &mut reported,
            );
        }
    }
    for cycle in reported {
        let names: Vec<&str> = cycle
            .iter()
            .map(|&i| set.composites[i].name.as_str())
            .collect();
        let first = names[0];
        let (file, p) = where_of(first);
        errors.push(ConfigError {
            file,
            pos: p,
            path: format!("composite_alarms.{first}.alarm_rule"),
            rule: Rule::Cycle,
            message: format!(
                "composite alarms refer to each other in a cycle: {} -> {first}; break it (e.g. replace one reference with FALSE)",
                names.join(" -> ")
            ),
        });
    }
    let _ = bad;
    let mut sorted = Vec::with_capacity(order.len());
    for i in order {
        sorted.push(set.composites[i].clone());
    }
    set.composites = sorted;
}
