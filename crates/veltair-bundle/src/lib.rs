//! The bundle file format (planned), shared by compiler and runtime and holding nothing else:
//! header, prost-encoded manifest, code and weight sections, checksums. Empty until the bundle
//! issue lands; see ARCHITECTURE.md.
