//! ferry-cli's integration tests: the real `ferry` binary.

mod config_fuzz;
mod output;
mod sim;
mod terminal;
mod workflows;
