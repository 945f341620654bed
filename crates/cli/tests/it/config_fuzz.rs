//! Mutation fuzzing of ferry.toml: every mutated copy of the examples' configs is read with an
//! answer (a config, or a located error), never a panic, in well under 2 s.

use std::time::{Duration, Instant};

use proptest::prelude::*;

fn examples() -> Vec<String> {
    let root = ferry_testkit::workspace_root().join("examples");
    ["cloudtolocalllm", "devops-platform", "ode", "cloudage"]
        .iter()
        .map(|e| std::fs::read_to_string(root.join(e).join("ferry.toml")).unwrap())
        .collect()
}

fn mutate(text: &str, edits: &[(u8, usize, u8)]) -> String {
    const PIECES: [&str; 12] = [
        "[",
        "]",
        "{",
        "}",
        "=",
        "\"",
        "'''",
        "\n[env.x]\n",
        ".",
        "#",
        "\u{0}",
        "= [",
    ];
    let mut bytes = text.as_bytes().to_vec();
    for &(op, at, b) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = at % bytes.len();
        match op % 4 {
            0 => bytes[i] = b,
            1 => {
                bytes.remove(i);
            }
            2 => {
                let p = PIECES[usize::from(b) % PIECES.len()].as_bytes();
                bytes.splice(i..i, p.iter().copied());
            }
            _ => bytes.truncate(i),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_configs_are_answered_without_panics(
        which in 0usize..4,
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..10),
    ) {
        let text = mutate(&examples()[which], &edits);
        let started = Instant::now();
        let _ = ferry_cli::config::LoadedConfig::from_text(std::path::Path::new("ferry.toml"), text.clone());
        prop_assert!(started.elapsed() < Duration::from_secs(2), "{:?} for {text:?}", started.elapsed());
    }
}
