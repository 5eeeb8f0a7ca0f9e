//! Help, completions and the manual page.

use predicates::prelude::*;

use crate::harness::overcommit;

#[test]
fn top_level_help_shows_examples() {
    overcommit()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"))
        .stdout(predicate::str::contains("overcommit check scenarios/quickstart.yaml"));
}

#[test]
fn every_subcommand_help_shows_an_example() {
    for sub in ["check", "host", "completions", "man"] {
        overcommit()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"))
            .stdout(predicate::str::contains(format!("overcommit {sub}")));
    }
}

#[test]
fn completions_for_each_shell() {
    // Each generator writes its shell's own completion syntax.
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef overcommit"), ("fish", "complete -c overcommit")]
    {
        overcommit().args(["completions", shell]).assert().success().stdout(predicate::str::contains(marker));
    }
}

#[test]
fn man_page_is_roff() {
    overcommit().arg("man").assert().success().stdout(predicate::str::starts_with(".ie"));
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    overcommit().arg("frobnicate").assert().code(2);
}
