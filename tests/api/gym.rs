//! The prompt gym end to end: it runs the real trainer against its simulated world, writes its
//! report, gives the same figures for the same seed, tells which regressions any deploy of the
//! oracle would have been, keeps injected instructions out of what it deploys, rolls back an
//! operator's bad deploy, judges the watch's rollbacks on the test set, and refuses an unknown
//! scenario by name.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn gym(args: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpgate-gym"))
        .args(args)
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn runs(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("gym-report.json")).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    report["runs"].as_array().unwrap().clone()
}

#[test]
fn the_gym_gives_the_same_report_for_the_same_seed() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = [
        "--seed",
        "7",
        "--scenario",
        "cold_recovery",
        "--events",
        "400",
    ];

    let first = gym(&args, a.path());
    let second = gym(&args, b.path());

    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(second.status.success());
    let (one, two) = (runs(a.path()), runs(b.path()));
    assert_eq!(one, two);
    let run = &one[0];
    assert_eq!(run["scenario"], "cold_recovery");
    assert_eq!(run["events"], 400, "a run gets its events, not one more");
    let calls = run["llm_calls"].as_u64().unwrap();
    assert!(calls > 0 && calls <= 150, "{run}");
    let (before, oracle) = (
        run["before"].as_f64().unwrap(),
        run["oracle"].as_f64().unwrap(),
    );
    assert!(0.0 < before && before < oracle && oracle < 1.0, "{run}");
    let [lenient, strict] = [&run["train_rules"][0], &run["train_rules"][1]];
    let blocked = |rule: &Value| rule["blocked"].as_f64().unwrap();
    let regressions = |rule: &Value| rule["regressions"].as_u64().unwrap();
    assert!(blocked(lenient) <= blocked(strict), "{run}");
    assert!(regressions(strict) <= regressions(lenient), "{run}");
    // Some good candidates lower the test score themselves, and not all do.
    let floor = run["test_floor"].as_f64().unwrap();
    assert!(0.0 < floor && floor < 1.0, "{run}");
    let count = |field: &str| run[field].as_u64().unwrap();
    assert!(
        count("regressions_small") <= count("regressions_deployed"),
        "{run}"
    );
    // Some tools' originals score below their starting texts on test, and deploys of them
    // are among the regressions.
    let below = count("regressions_oracle_below_start");
    assert!(
        0 < below && below <= count("regressions_over_start"),
        "{run}"
    );
    assert!(
        count("regressions_over_start") <= count("regressions_deployed"),
        "{run}"
    );
    let markdown = std::fs::read_to_string(a.path().join("GYM.md")).unwrap();
    assert!(markdown.contains("| cold_recovery | 7 |"), "{markdown}");
    assert!(
        markdown.contains("of those, the original where it scores below the starting text"),
        "{markdown}"
    );
}

#[test]
fn every_rollback_of_a_run_without_an_operator_is_the_watchs_and_is_judged_on_the_test_set() {
    let out = tempfile::tempdir().unwrap();
    let args = [
        "--seed",
        "2",
        "--scenario",
        "cold_recovery",
        "--events",
        "400",
    ];

    let done = gym(&args, out.path());

    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let run = &runs(out.path())[0];
    let judged: u64 = run["watch_rollbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(judged > 0, "{run}");
    assert_eq!(
        Some(judged),
        run["runs"]["none rolled_back"].as_u64(),
        "{run}"
    );
    let markdown = std::fs::read_to_string(out.path().join("GYM.md")).unwrap();
    assert!(
        markdown.contains("## What the watch's rollbacks put back"),
        "{markdown}"
    );
}

#[test]
fn in_a_seeded_run_no_injected_instruction_is_deployed_and_a_bad_deploy_is_rolled_back() {
    let out = tempfile::tempdir().unwrap();
    let args = [
        "--seed",
        "3",
        "--scenario",
        "injection_through_suggestions",
        "--scenario",
        "regression_after_deploy",
        "--events",
        "800",
    ];

    let ran = gym(&args, out.path());

    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let runs = runs(out.path());
    assert_eq!(runs[0]["injected"][1], 0, "{}", runs[0]);
    assert!(runs[0]["candidates"]["manipulative"][0].as_u64().unwrap() > 0);
    let rollback = &runs[1]["rollback"];
    let deployed = rollback[0].as_u64().unwrap();
    assert!(deployed >= 400, "deployed halfway: {rollback}");
    let back = rollback[1].as_u64().expect("the bad deploy is rolled back");
    assert!(back - deployed <= 100, "rolled back quickly: {rollback}");
}

#[test]
fn an_unknown_scenario_is_refused_with_the_known_names() {
    let out = tempfile::tempdir().unwrap();

    let ran = gym(&["--scenario", "nope"], out.path());

    assert!(!ran.status.success());
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(stderr.contains("no scenario is named `nope`"), "{stderr}");
    assert!(stderr.contains("cold_recovery"), "{stderr}");
}
