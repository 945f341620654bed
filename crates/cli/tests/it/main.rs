//! ferry-cli's integration tests: the real `ferry` binary.

mod output;
mod sim;
mod terminal;
mod workflows;
