//! ferry-deployer's integration tests (one binary, modules by subject).

mod engine;
mod fuzz;
mod kustomize_diff;
