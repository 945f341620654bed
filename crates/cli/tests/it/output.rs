//! Writing to stdout: a reader that goes away (`ferry ... | head`) ends the command quietly.

use std::process::{Command, Stdio};

/// The bash completion script is larger than a pipe's buffer (64 KiB on Linux), so closing the
/// read end at once makes its write fail with EPIPE whatever the timing.
#[test]
fn a_closed_pipe_ends_the_command_without_a_panic_or_a_message() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit 1, not a panic's 101: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
