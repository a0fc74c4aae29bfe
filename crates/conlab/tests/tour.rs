//! `conlab tour` end to end, through the binary, with the smallest budget: every experiment
//! runs and reports figures, series and a verdict; the correctness claims (not the timing
//! ones, which depend on the machine) hold; `--json` parses and carries it all.

use std::process::Command;

fn conlab(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running conlab");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_whole_tour_reports_every_finding_with_figures_series_and_a_verdict() {
    let (code, stdout, stderr) = conlab(&["tour", "--quick", "--json", "-"]);
    assert_eq!(code, Some(0), "tour failed: {stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("only JSON on stdout");
    assert_eq!(report["schema"], "conlab.tour/2");
    assert_eq!(report["budget"], "quick");
    let findings = report["findings"].as_array().unwrap();
    let names: Vec<&str> = findings
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "stations", "gophers", "kettle", "primes", "gil-io", "is-prime", "costs", "atomic",
            "deadlock", "crash", "scrape", "web"
        ]
    );
    let (mut held, mut not_held, mut cannot_show) = (0, 0, 0);
    for f in findings {
        let name = &f["name"];
        assert!(
            !f["figures"].as_array().unwrap().is_empty(),
            "{name}: no figures"
        );
        for figure in f["figures"].as_array().unwrap() {
            assert!(
                figure["value"].is_number() && figure["unit"].is_string(),
                "{figure}"
            );
        }
        let series = f["series"].as_array().unwrap();
        assert!(!series.is_empty(), "{name}: no series");
        for s in series {
            assert!(
                s["x"]["label"].is_string() && s["y"]["unit"].is_string(),
                "{s}"
            );
            assert!(!s["points"].as_array().unwrap().is_empty(), "{s}");
        }
        for key in ["quote", "slide", "figure"] {
            assert!(
                f["claim"][key].as_str().is_some_and(|t| !t.is_empty()),
                "{name}"
            );
        }
        assert!(
            f["verdict"]["reason"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "{name}"
        );
        match f["verdict"]["outcome"].as_str().unwrap() {
            "held" => held += 1,
            "not-held" => not_held += 1,
            "cannot-show" => cannot_show += 1,
            other => panic!("{name}: verdict {other}"),
        }
    }
    assert_eq!(
        (
            report["held"].as_u64(),
            report["not_held"].as_u64(),
            report["cannot_show"].as_u64()
        ),
        (Some(held), Some(not_held), Some(cannot_show))
    );
    // Correctness, whatever the machine's speed or load: these verdicts rest on answers only.
    for name in ["is-prime", "deadlock", "crash"] {
        let f = findings.iter().find(|f| f["name"] == name).unwrap();
        assert_eq!(f["verdict"]["outcome"], "held", "{name}: {}", f["verdict"]);
    }
}

#[test]
fn the_text_shows_the_lectures_figure_beside_the_measured_one_and_every_model_agrees() {
    let (code, stdout, stderr) = conlab(&["tour", "--quick", "--only", "primes,crash,deadlock"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("measured: sums [6458901531, 9914236195, 14071826345]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("lecture:  [6458901531, 9914236195, 14071826345]"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("agree with serial").count(), 6, "{stdout}");
    assert!(stdout.contains("killed by signal 9 (SIGKILL)"), "{stdout}");
    assert_eq!(stdout.matches("deadlock:").count(), 2, "{stdout}");
    assert_eq!(stdout.matches("\n   -> ").count(), 3, "{stdout}");
    assert!(
        !stdout.contains("The kettle"),
        "--only ran another experiment"
    );
}

#[test]
fn help_lists_every_experiment_and_an_unknown_one_is_a_usage_error() {
    let (code, stdout, _) = conlab(&["tour", "--help"]);
    assert_eq!(code, Some(0));
    for name in [
        "stations", "gophers", "kettle", "primes", "gil-io", "is-prime", "costs", "atomic", "web",
    ] {
        assert!(stdout.contains(name), "--help lacks {name}:\n{stdout}");
    }
    let (code, _, stderr) = conlab(&["tour", "--only", "kettel"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("kettle") && stderr.contains("primes"),
        "{stderr}"
    );
}

#[test]
fn html_writes_one_self_contained_page_and_an_unwritable_path_is_refused_first() {
    let path = std::env::temp_dir().join(format!("conlab-tour-{}.html", std::process::id()));
    let (code, _, stderr) = conlab(&[
        "tour",
        "--quick",
        "--only",
        "primes,deadlock",
        "--html",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let html = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert_eq!(html.matches("<section").count(), 2);
    assert!(html.contains("<section id=\"primes\">") && html.contains("<svg"));
    assert!(html.contains("id=\"report\"") && html.contains("conlab.tour/2"));
    assert!(
        !html.contains("src=") && !html.contains("href=\"http"),
        "nothing fetched"
    );
    let (code, _, stderr) = conlab(&["tour", "--only", "primes", "--html", "/nonexistent/t.html"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--html /nonexistent/t.html"), "{stderr}");
}
