//! ferry-sim's integration tests: kubectl and kube-rs as independent clients of the simulator.

mod bad_input;
mod duplicates;
mod faults;
mod fuzz;
mod kube_rs;
mod kubectl;
mod server_side_apply;
mod state;
mod support;
mod workloads;
