//! How fast `fluxroute loadgen` makes line protocol: one 5,000-line body of the cpu/mem/disk
//! shapes over 100 hosts per iteration (lines/s in criterion's throughput column). It must stay
//! far above what one `influxd`, or fluxroute, accepts, or the load tests measure loadgen.
//!
//! `cargo bench --bench loadgen -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fluxroute::loadgen::{Generator, GeneratorSpec, Shape};

const LINES: usize = 5000;

fn generation(c: &mut Criterion) {
    let spec = GeneratorSpec {
        hosts: 100,
        shapes: vec![Shape::Cpu, Shape::Mem, Shape::Disk],
        extra_tags: 0,
        extra_fields: 0,
        base_ns: 1_700_000_000_000_000_000,
    };
    let gen = Generator::try_new(&spec).expect("a valid generator spec");
    let mut group = c.benchmark_group("loadgen");
    group.throughput(Throughput::Elements(LINES as u64));
    let mut first = 0u64;
    let mut buf = Vec::new();
    group.bench_function("write_lines_5000", |b| {
        b.iter(|| {
            buf.clear();
            gen.write_lines(first, LINES, &mut buf);
            first += LINES as u64;
            black_box(buf.len())
        })
    });
    group.finish();
}

criterion_group!(benches, generation);
criterion_main!(benches);
