//! No input makes the loader panic: random bytes and random edits of the
//! shipped scenarios each give `Ok` or `Err`.

use overcommit::scenario::{Override, load_str};
use proptest::prelude::*;

use crate::harness::shipped_scenarios;

fn shipped_texts() -> Vec<String> {
    let texts: Vec<String> = shipped_scenarios().iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    assert!(!texts.is_empty(), "no shipped scenarios found");
    texts
}

/// One edit of a scenario's text.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    ReplaceValue(usize, String),
}

fn apply(text: &str, edit: &Edit) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len().max(1);
    match edit {
        Edit::Delete(at, len) => {
            let a = at % n;
            let b = (a + len % 40).min(chars.len());
            chars[..a].iter().chain(chars[b..].iter()).collect()
        }
        Edit::Insert(at, s) => {
            let a = at % n;
            let mut out: String = chars[..a.min(chars.len())].iter().collect();
            out.push_str(s);
            out.extend(chars[a.min(chars.len())..].iter());
            out
        }
        Edit::DuplicateLine(i) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let k = i % lines.len();
                lines.insert(k, lines[k]);
            }
            lines.join("\n")
        }
        Edit::SwapLines(i, j) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let (a, b) = (i % lines.len(), j % lines.len());
                lines.swap(a, b);
            }
            lines.join("\n")
        }
        Edit::ReplaceValue(i, v) => {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            if !lines.is_empty() {
                let k = i % lines.len();
                if let Some(c) = lines[k].find(": ") {
                    lines[k] = format!("{}: {v}", &lines[k][..c]);
                }
            }
            lines.join("\n")
        }
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    let nasty = prop_oneof![
        Just("-1".to_string()),
        Just("4Q".to_string()),
        Just("18446744073709551616".to_string()),
        Just("1e400".to_string()),
        Just("[".to_string()),
        Just("{".to_string()),
        Just("\"".to_string()),
        Just("&a x".to_string()),
        Just("*a".to_string()),
        Just("~".to_string()),
        Just("zipf(".to_string()),
        Just("hotcold(2, -1)".to_string()),
        Just("-m 4G -object memory-backend-file,id=m,size=".to_string()),
        Just("é€\u{0}".to_string()),
        Just("0".to_string()),
        Just("100%".to_string()),
        "\\PC{0,12}",
    ];
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, l)| Edit::Delete(a, l)),
        (any::<usize>(), nasty.clone()).prop_map(|(a, s)| Edit::Insert(a, s)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), nasty).prop_map(|(a, s)| Edit::ReplaceValue(a, s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = load_str(&text, "random.yaml", "random", &[]);
    }

    #[test]
    fn mutated_scenarios_never_panic(which in any::<usize>(), edits in proptest::collection::vec(edit(), 1..4)) {
        let texts = shipped_texts();
        let mut text = texts[which % texts.len()].clone();
        for e in &edits {
            text = apply(&text, e);
        }
        let _ = load_str(&text, "mutated.yaml", "mutated", &[]);
    }

    #[test]
    fn mutated_fleet_files_never_panic(edits in proptest::collection::vec(edit(), 1..4)) {
        let mut text = std::fs::read_to_string(crate::harness::repo().join("scenarios/fleet.yaml")).unwrap();
        for e in &edits {
            text = apply(&text, e);
        }
        let _ = overcommit::fleet::file::load_str(&text, "mutated.yaml", "mutated", std::path::Path::new("."));
    }

    #[test]
    fn random_overrides_never_panic(path in "[a-z_.0-9]{0,24}", value in "\\PC{0,16}") {
        let texts = shipped_texts();
        let o = Override { path, value };
        let _ = load_str(&texts[0], "x.yaml", "x", &[o]);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let text = format!("host: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(load_str(&text, "deep.yaml", "deep", &[]).is_err());
}
