//! The multi-tenant runtime `veltair-run` (planned): loads bundles, schedules layer blocks and
//! serves KServe v2. Empty until the runtime issue lands; see ARCHITECTURE.md.
