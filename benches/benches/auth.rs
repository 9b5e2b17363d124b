//! The cost access control adds to every request (issue 18): authenticating a bearer token
//! (SHA-256 of the token, then a constant-time comparison with every digest in force) with 4,
//! 100 and 10,000 (the limit) token entries, and authorizing a namespace-scoped push.
//! Criterion's throughput is requests per second on one core.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use thermostat_auth::{Access, AuthTelemetry, Credentials, Permission, Role, TokenEntry, Tokens};

fn access(n: usize) -> (Access, String) {
    let tokens: Vec<String> = (0..n).map(|_| thermostat_auth::new_token()).collect();
    let yaml: String = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let role = Role::ALL[i % 4];
            format!(
                "{}  namespaces: ['App/*', Web]\n",
                thermostat_auth::yaml_entry(&format!("t{i}"), role, t)
            )
        })
        .collect();
    let entries: Vec<TokenEntry> = serde_yaml_ng::from_str(&yaml).expect("entries");
    let resolved = Tokens::resolve(&entries, &|_| None, &|_| Err(String::new())).expect("tokens");
    let access = Access::new(Some(resolved), false, 1000, AuthTelemetry::default());
    // The last entry: every comparison runs whichever matches.
    (access, format!("Bearer {}", tokens[n - 1]))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("authenticate");
    group.throughput(Throughput::Elements(1));
    for n in [4, 100, 10_000] {
        let (access, header) = access(n);
        group.bench_function(format!("{n}_tokens"), |b| {
            b.iter(|| {
                let p = access
                    .authenticate(Credentials {
                        authorization: Some(black_box(&header)),
                        client_subject: None,
                    })
                    .expect("known");
                access
                    .authorize_namespace(&p, Permission::ReadMetrics, black_box("App/checkout"))
                    .is_ok()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
