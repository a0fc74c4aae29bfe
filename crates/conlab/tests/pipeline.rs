//! `conlab pipeline` through the binary: a stage spec runs and reports every stage, the
//! designs run by name, bad input names what is wrong before anything runs.

mod common;

use common::{conlab, json_of};

#[test]
fn a_stage_spec_runs_every_item_through_every_stage() {
    let report = json_of(&[
        "pipeline",
        "--stages",
        "load:1:200us,move:2:spin:100us,unload:1:sleep:100us",
        "--items",
        "60",
        "--batch",
        "4",
        "--ordered",
        "--json",
        "-",
    ]);
    assert_eq!(report["schema"], "conlab.pipeline/1");
    assert_eq!(report["items_in"], 60);
    assert_eq!(report["items_out"], 60);
    let stages = report["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["load", "move", "unload"]);
    for s in stages {
        assert_eq!(s["items"], 60, "{s}");
        let u = s["utilisation"].as_f64().unwrap();
        assert!(u > 0.0 && u <= 1.05, "{s}");
    }
    assert!(report["bottleneck"]["stage"].is_string());
}

#[test]
fn the_designs_run_by_name_and_on_one_core() {
    for model in ["threads", "async"] {
        let report = json_of(&[
            "pipeline",
            "--design",
            "four-procedures",
            "--unit",
            "200us",
            "--items",
            "40",
            "--cores",
            "1",
            "--model",
            model,
            "--json",
            "-",
        ]);
        assert_eq!(report["items_out"], 40, "{model}");
        assert_eq!(report["cores"], 1, "{model}");
        assert_eq!(report["stages"].as_array().unwrap().len(), 4);
    }
    let compare = json_of(&[
        "pipeline",
        "--compare",
        "--unit",
        "100us",
        "--items",
        "20",
        "--json",
        "-",
    ]);
    let rows = compare["designs"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["design"], "one-gopher");
    assert_eq!(rows[9]["gophers"], 16);
}

#[test]
fn bad_input_names_the_problem_and_runs_nothing() {
    for (args, named) in [
        (
            vec!["pipeline", "--stages", "load:1:2ms,move:zero:2ms"],
            "move:zero:2ms",
        ),
        (vec!["pipeline", "--stages", "load:1:fast"], "load:1:fast"),
        (
            vec!["pipeline", "--design", "nine-gophers"],
            "four-procedures",
        ),
        (vec!["pipeline"], "--stages"),
        (
            vec!["pipeline", "--design", "one-gopher", "--cores", "999"],
            "--cores 999",
        ),
    ] {
        let out = conlab(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{args:?} should name {named}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
