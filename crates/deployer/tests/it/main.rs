//! ferry-deployer's integration tests (one binary, modules by subject).

mod kustomize_diff;
