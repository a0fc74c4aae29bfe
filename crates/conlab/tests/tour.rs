//! `conlab tour` end to end, through the binary: every experiment runs and reports, and the
//! correctness claims (not the timing ones) hold.

use std::process::Command;

fn conlab(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(args)
        .output()
        .expect("running conlab");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_tour_runs_every_experiment_and_reports_each() {
    let (ok, stdout, stderr) = conlab(&["tour"]);
    assert!(ok, "tour failed: {stderr}");
    for heading in [
        "The kettle",
        "Sum of primes",
        "is_prime",
        "Deadlocks",
        "worker process dies",
        "Apache vs nginx",
    ] {
        assert!(
            stdout.contains(heading),
            "missing {heading:?} in:\n{stdout}"
        );
    }
    // Correctness, whatever the machine's speed: the lecture's answers, every model agreeing.
    assert!(
        stdout.contains("sums [6458901531, 9914236195, 14071826345]"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("agree with serial").count(), 6, "{stdout}");
    assert!(
        stdout.contains("1099726899285419 is prime: False"),
        "{stdout}"
    );
    assert!(stdout.contains("killed by signal 9 (SIGKILL)"), "{stdout}");
    assert_eq!(stdout.matches("deadlock:").count(), 2, "{stdout}");
    assert!(stdout.contains("fetch_add: 0 updates lost"), "{stdout}");
}

#[test]
fn json_output_carries_every_finding_with_its_figures() {
    let (ok, stdout, stderr) = conlab(&["tour", "--only", "atomic,deadlock", "--json", "-"]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("only JSON on stdout");
    assert_eq!(report["schema"], "conlab.tour/1");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[0]["name"], "atomic");
    assert_eq!(findings[0]["figures"]["atomic_lost"], 0.0);
    assert!(findings[0]["figures"]["racy_lost"].as_f64().unwrap() >= 0.0);
    assert_eq!(findings[1]["held"], true);
}

#[test]
fn only_runs_the_named_experiments() {
    let (ok, stdout, _) = conlab(&["tour", "--only", "deadlock"]);
    assert!(ok);
    assert!(
        stdout.contains("Deadlocks") && !stdout.contains("The kettle"),
        "{stdout}"
    );
}

#[test]
fn an_unknown_experiment_is_a_usage_error_that_lists_the_valid_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(["tour", "--only", "kettel"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("kettle") && stderr.contains("primes"),
        "{stderr}"
    );
}
