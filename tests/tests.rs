//! Integration tests: real `cargo capsule build` runs on the fixture crates,
//! as the current user and (when the tests run as root) as uid 65534.

mod audit;
mod bad_input;
mod build;
mod check;
mod macros;
mod scan;
mod util;
