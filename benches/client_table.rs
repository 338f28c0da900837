//! The client-handle table: insert, lookup by token (slab key) and by id, remove.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use muxd::client_table::TableBench;

const CLIENTS: usize = 1000;

fn table(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_table");
    group.throughput(Throughput::Elements(CLIENTS as u64));

    group.bench_function("insert_remove_1000", |b| {
        let mut t = TableBench::new(CLIENTS).expect("socket pairs");
        let mut keys = Vec::with_capacity(CLIENTS);
        b.iter(|| {
            keys.clear();
            while let Some((key, _)) = t.insert() {
                keys.push(key);
            }
            for &key in &keys {
                t.remove(key);
            }
        });
    });

    let mut t = TableBench::new(CLIENTS).expect("socket pairs");
    let mut entries = Vec::with_capacity(CLIENTS);
    while let Some(entry) = t.insert() {
        entries.push(entry);
    }
    group.bench_function("lookup_by_key_1000", |b| {
        b.iter(|| {
            entries
                .iter()
                .filter(|(key, _)| t.get(std::hint::black_box(*key)).is_some())
                .count()
        });
    });
    group.bench_function("lookup_by_id_1000", |b| {
        b.iter(|| {
            entries
                .iter()
                .filter(|(_, id)| t.lookup(std::hint::black_box(*id)).is_some())
                .count()
        });
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("remove_insert_one_in_full_table", |b| {
        b.iter_batched(
            || entries[CLIENTS / 2].0,
            |key| {
                t.remove(key);
                t.insert()
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, table);
criterion_main!(benches);
