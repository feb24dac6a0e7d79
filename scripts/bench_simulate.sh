#!/usr/bin/env bash
# The simulated (modelled, not measured) QPS-at-QoS tables of artifacts/simulate.md: light,
# medium and heavy mixes on a modelled 64-core machine, with layers limited to the widths the
# bundles were measured at (2) and allowed up to 16 (Amdahl-extrapolated), each policy plus the
# breakdown variants (blocks without deadline order, blocks without adaptive versions).
# Usage: scripts/bench_simulate.sh [BUNDLE_DIR] [CORES]   (default target/bundles-full, 64)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bundles="${1:-target/bundles-full}"
cores="${2:-64}"
cargo build --release --quiet -p veltair-run
out=artifacts/simulate.md
{
    echo "# Simulated multi-tenant QPS-at-QoS (modelled, not measured)"
    echo
    echo "Made by \`scripts/bench_simulate.sh $bundles $cores\` at commit $(git rev-parse --short HEAD)"
    echo "($(date -u +%Y-%m-%d)). The model is stated in \`crates/veltair-run/src/sched/sim.rs\` and"
    echo "\`profile.rs\`. Policies: \`model-wise\` is FCFS with a width per query; \`layer-block+fcfs\` adds"
    echo "layer blocks only; \`layer-block\` adds earliest-deadline-first order; \`veltair\` adds"
    echo "contention-adaptive versions; \`layer-wise\` decides per layer (deadline order)."
    for width in 2 16; do
        for mix in light medium heavy; do
            cmd="veltair-run simulate --mix $mix --bundles $bundles --cores $cores --max-width $width --queries 2000"
            cmd+=" --policy model-wise --policy layer-block+fcfs --policy layer-block --policy veltair --policy layer-wise"
            echo
            echo "## $mix mix, $cores cores, layers up to $width cores"
            echo
            echo "\`$cmd\`"
            echo
            echo '```'
            # shellcheck disable=SC2086
            ./target/release/$cmd
            echo '```'
        done
    done
} >"$out"
echo "wrote $out"
