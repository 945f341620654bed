//! ferry-cli's integration tests: the real `ferry` binary.

mod sim;
mod workflows;
