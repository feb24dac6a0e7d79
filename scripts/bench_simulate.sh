#!/usr/bin/env bash
# The simulated (modelled, not measured) QPS-at-QoS tables of artifacts/simulate.md: light,
# medium and heavy mixes on a modelled 64-core machine, with layers limited to the widths the
# bundles were measured at (2) and allowed up to 16 (Amdahl-extrapolated), each policy plus the
# breakdown variants (blocks alone, + deadline order, + widening into idle cores, + adaptive
# versions). Layer times include the in-situ factors measured on this machine
# (artifacts/insitu_light.json for the light mix, artifacts/insitu_medium.json, which holds all
# six models, for the others).
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
    echo "\`profile.rs\`, with the in-situ factors of \`artifacts/insitu_*.json\`. Policies: \`model-wise\` is"
    echo "FCFS with a width per query; \`layer-block+fcfs+fit\` adds layer blocks only; \`layer-block+fit\`"
    echo "adds earliest-deadline-first order; \`layer-block\` adds widening into idle cores; \`veltair\`"
    echo "adds contention-adaptive versions; \`layer-wise\` decides per layer (deadline order, widening)."
    for width in 2 16; do
        for mix in light medium heavy; do
            in_situ=artifacts/insitu_medium.json
            [ "$mix" = light ] && in_situ=artifacts/insitu_light.json
            cmd="veltair-run simulate --mix $mix --bundles $bundles --cores $cores --max-width $width --queries 2000"
            cmd+=" --in-situ $in_situ --policy model-wise --policy layer-block+fcfs+fit --policy layer-block+fit"
            cmd+=" --policy layer-block --policy veltair --policy layer-wise"
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
