//! Integration tests of the bundle format: round trips, corruption, manifest rules and header
//! checks, in one test binary.

mod common;
mod corruption;
mod header;
mod round_trip;
mod semantic;
