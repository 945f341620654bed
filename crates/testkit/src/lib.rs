//! Test support shared by ferry's integration tests.
//!
//! The real local servers the tests use (the reference OCI registry, moto, knot, ...) are
//! installed and started by `scripts/servers.sh start`, which writes their addresses as
//! `KEY=VALUE` lines to `target/test-servers/env`. `scripts/test.sh` also exports them. A test
//! asks for a server with [`server`]; when the server was not started, the test fails with a
//! message saying how to start it, rather than passing without having tested anything.

use std::path::PathBuf;

pub mod proxy;

/// The workspace root, found from this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(PathBuf::from)
        .expect("crates/testkit sits two levels below the workspace root")
}

/// The `ferry` binary built for this test run (`target/<profile>/ferry`, next to the directory
/// holding the test executable). Tests in crates other than `ferry-cli` use it to run the real
/// command line; `scripts/test.sh` builds it first.
///
/// # Panics
/// When the binary has not been built.
pub fn ferry_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    // target/<profile>/deps/<test-binary> -> target/<profile>/ferry
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in target/<profile>/deps");
    let bin = profile_dir.join(format!("ferry{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: build it first with `cargo build -p ferry-cli --all-features`",
        bin.display()
    );
    bin
}

/// The file `scripts/servers.sh start` writes the servers' addresses to.
pub fn servers_env_file() -> PathBuf {
    workspace_root().join("target/test-servers/env")
}

/// The value of a test-server variable such as `FERRY_TEST_REGISTRY`: from the environment
/// first, then from `target/test-servers/env`.
///
/// # Panics
/// When the variable is in neither place: the server the test needs was not started.
pub fn server(var: &str) -> String {
    lookup(var).unwrap_or_else(|| {
        panic!(
            "test server variable {var} is not set: start the local test servers first with \
             `scripts/servers.sh start` (as root), or run the whole suite with `scripts/test.sh`"
        )
    })
}

/// Like [`server`], but `None` when the variable is not set anywhere.
pub fn lookup(var: &str) -> Option<String> {
    #[expect(
        clippy::disallowed_methods,
        reason = "test support reads the environment the test script set"
    )]
    if let Ok(value) = std::env::var(var) {
        return Some(value);
    }
    let text = std::fs::read_to_string(servers_env_file()).ok()?;
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == var)
        .map(|(_, value)| value.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn unset_variable_is_none() {
        assert_eq!(lookup("FERRY_TEST_SURELY_NEVER_SET_9F2C"), None);
    }
}
