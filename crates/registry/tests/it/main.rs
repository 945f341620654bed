//! ferry-registry against the real reference registry (Debian `docker-registry`) in every auth
//! mode, with skopeo as the independent verifier. Start the servers first:
//! `scripts/servers.sh install && scripts/servers.sh start` (as root).

mod acr;
mod auth;
mod bad_input;
mod cli;
mod copy;
mod faults;
mod push;
mod resume;
mod stalls;
mod support;
