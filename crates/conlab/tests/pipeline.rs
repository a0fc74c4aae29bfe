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

fn gunzip(path: &std::path::Path) -> Vec<u8> {
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("running gzip -dc");
    assert!(
        out.status.success(),
        "gzip -dc {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn pipeline_gzip_output_is_gzip_that_gunzip_restores() {
    let dir = common::Scratch::new("pipeline-gzip");
    let text: Vec<u8> = (0..40_000u32)
        .flat_map(|i| format!("{i} the gophers burn the manuals\n").into_bytes())
        .collect();
    let block = 128 * 1024;
    for len in [0, 1, block - 1, block, block + 1, 3 * block, text.len()] {
        let input = dir.path(&format!("in-{len}"));
        std::fs::write(&input, &text[..len]).unwrap();
        let out = conlab(&["pipeline", "gzip", "-p", "3", input.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{len}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let gz = dir.path(&format!("in-{len}.gz"));
        assert_eq!(gunzip(&gz), &text[..len], "{len} bytes");
        assert!(input.exists(), "the input is kept");
    }
    // A directory: every file, to the output directory.
    let tree = dir.path("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.log"), &text[..5000]).unwrap();
    std::fs::write(tree.join("sub/b.log"), &text[..70_000]).unwrap();
    let outdir = dir.path("tree-gz");
    let out = conlab(&[
        "pipeline",
        "gzip",
        tree.to_str().unwrap(),
        "-o",
        outdir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(gunzip(&outdir.join("a.log.gz")), &text[..5000]);
    assert_eq!(gunzip(&outdir.join("sub/b.log.gz")), &text[..70_000]);
    // Again: the outputs are there, so nothing is done without -f, as gzip refuses them.
    std::fs::write(tree.join("a.log"), &text[..6000]).unwrap();
    let again = |force: bool| {
        let mut args = vec!["pipeline", "gzip", tree.to_str().unwrap(), "-o"];
        args.push(outdir.to_str().unwrap());
        if force {
            args.push("-f");
        }
        conlab(&args)
    };
    // gzip's status for outputs left alone: 2, a warning.
    let out = again(false);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists; not overwritten"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(gunzip(&outdir.join("a.log.gz")), &text[..5000], "untouched");
    assert!(again(true).status.success());
    assert_eq!(
        gunzip(&outdir.join("a.log.gz")),
        &text[..6000],
        "overwritten"
    );
    // A device is written to, not replaced by a file.
    let out = conlab(&[
        "pipeline",
        "gzip",
        tree.join("a.log").to_str().unwrap(),
        "-o",
        "/dev/null",
    ]);
    assert!(out.status.success());
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
}

#[test]
fn pipeline_gzip_handles_a_sparse_file_of_gigabytes() {
    let dir = common::Scratch::new("pipeline-gzip-sparse");
    let input = dir.path("sparse");
    let file = std::fs::File::create(&input).unwrap();
    let size: u64 = 2 << 30;
    file.set_len(size).unwrap();
    drop(file);
    let out = conlab(&["pipeline", "gzip", input.to_str().unwrap(), "-o", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // gzip's trailer: CRC-32 of 2 GiB of zeros and the length modulo 2^32.
    let gz = &out.stdout;
    let isize = u32::from_le_bytes(gz[gz.len() - 4..].try_into().unwrap());
    assert_eq!(u64::from(isize), size % (1 << 32));
    let mut child = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = out.stdout.clone();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data));
    let mut restored = 0u64;
    let mut nonzero = false;
    let mut buf = vec![0u8; 1 << 20];
    let mut stdout = child.stdout.take().unwrap();
    loop {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        nonzero |= buf[..n].iter().any(|&b| b != 0);
        restored += n as u64;
    }
    writer.join().unwrap().unwrap();
    assert!(
        child.wait().unwrap().success(),
        "gzip -dc accepted it (CRC and length)"
    );
    assert_eq!(restored, size);
    assert!(!nonzero);
}

#[test]
fn pipeline_gzip_errors_name_the_file_and_ctrl_c_leaves_no_partial_output() {
    let dir = common::Scratch::new("pipeline-gzip-errors");
    let missing = dir.path("missing.log");
    let out = conlab(&["pipeline", "gzip", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.log"));
    let input = dir.path("in.log");
    std::fs::write(&input, "x").unwrap();
    let out = conlab(&[
        "pipeline",
        "gzip",
        input.to_str().unwrap(),
        "-o",
        "/proc/no/such/dir/x.gz",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/proc/no/such/dir"));
    // Ctrl-C in the middle of a big input: exit 130, nothing under the final name or a
    // temporary one.
    let big = dir.path("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(20 << 30)
        .unwrap();
    let target = dir.path("big.gz");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args([
            "pipeline",
            "gzip",
            big.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Until the temporary file exists: the compression has started.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let started = || {
        std::fs::read_dir(dir.path(""))
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains(".tmp"))
    };
    while !started() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<String> = std::fs::read_dir(dir.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!target.exists(), "{left:?}");
    assert!(!left.iter().any(|n| n.contains(".tmp")), "{left:?}");
}

#[test]
fn pipeline_gzip_reads_gzip_and_pigz_command_lines_as_they_do() {
    let dir = common::Scratch::new("pipeline-gzip-flags");
    let tree = dir.path("d");
    std::fs::create_dir_all(tree.join("s")).unwrap();
    std::fs::write(tree.join("x"), "the manuals\n".repeat(1000)).unwrap();
    std::fs::write(tree.join("s/w"), "the cart\n").unwrap();
    std::fs::write(tree.join("y.gz"), "not really gzip").unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = conlab(args);
        (
            out.status.code(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // -9 -c: level 9 (XFL 2 in the header) to standard output.
    let (code, best, err) = run(&["pipeline", "gzip", "-9", "-c", &s(&tree.join("x"))]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(best[8], 2);
    std::fs::write(dir.path("x9.gz"), &best).unwrap();
    assert_eq!(
        gunzip(&dir.path("x9.gz")),
        "the manuals\n".repeat(1000).as_bytes()
    );
    // The last level given counts: -1 after -l 9 is level 1 (XFL 4 in the header).
    let (_, fast, _) = run(&[
        "pipeline",
        "gzip",
        "-l",
        "9",
        "-1",
        "-c",
        &s(&tree.join("x")),
    ]);
    assert_eq!(fast[8], 4);
    // -r without -o: each file beside itself, .gz files left alone.
    let (code, _, err) = run(&["pipeline", "gzip", "-r", "-k", &s(&tree)]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(gunzip(&tree.join("s/w.gz")), b"the cart\n");
    assert!(tree.join("x.gz").exists() && !tree.join("y.gz.gz").exists());
    // A named .gz file is left alone with a note (gzip's status stays 0); -d is refused by
    // name.
    let (code, _, err) = run(&["pipeline", "gzip", &s(&tree.join("y.gz"))]);
    assert_eq!(code, Some(0));
    assert!(!tree.join("y.gz.gz").exists());
    assert!(err.contains("already has the .gz suffix"), "{err}");
    // -l FILE.gz is gzip's --list: refused by that name, not as a bad number.
    let (code, _, err) = run(&["pipeline", "gzip", "-l", &s(&tree.join("x.gz"))]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--list"), "{err}");
    let (code, _, err) = run(&["pipeline", "gzip", "-d", &s(&tree.join("x.gz"))]);
    assert_eq!(code, Some(2));
    assert!(err.contains("only compresses"), "{err}");
    // pigz's -b counts KiB; a block under 32K is refused.
    let (code, out, err) = run(&["pipeline", "gzip", "-b", "64", "-c", &s(&tree.join("s/w"))]);
    assert_eq!(code, Some(0), "{err}");
    let gz = dir.path("w.gz");
    std::fs::write(&gz, out).unwrap();
    assert_eq!(gunzip(&gz), b"the cart\n");
    let (code, _, err) = run(&["pipeline", "gzip", "-b", "16", "-c", &s(&tree.join("x"))]);
    assert_eq!(code, Some(2));
    assert!(err.contains("a number is KiB"), "{err}");
}

#[test]
fn pipeline_gzip_ends_as_gzip_ends_on_signals_closed_readers_and_limits() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let dir = common::Scratch::new("pipeline-gzip-ends");
    let bin = env!("CARGO_BIN_EXE_conlab");
    let big = dir.path("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    // A reader that goes away: SIGPIPE at once, as gzip (not gigabytes compressed for
    // nobody).
    let mut child = Command::new(bin)
        .args(["pipeline", "gzip", "-c", big.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");
    // SIGTERM while blocked reading a pipe nobody writes: 143 within a second, as gzip.
    let mut child = Command::new(bin)
        .args([
            "pipeline",
            "gzip",
            "-o",
            dir.path("stdin.gz").to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _writer_kept_open = child.stdin.take();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let began = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(began.elapsed() < std::time::Duration::from_secs(5));
    // A file-size limit is a write error that names the file, with nothing left behind.
    // Incompressible: 1 MiB in, about as much out, over a 100 KiB limit.
    let mut random = Vec::new();
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .take(1 << 20)
        .read_to_end(&mut random)
        .unwrap();
    std::fs::write(dir.path("random"), &random).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f 100; exec {bin} pipeline gzip {} -o {}",
            dir.path("random").display(),
            dir.path("limited.gz").display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("writing"),
        "{out:?}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !left
            .iter()
            .any(|n| n.contains("limited") || n.contains("tmp")),
        "{left:?}"
    );
}

#[test]
fn pipeline_gzip_keeps_modes_refuses_links_and_reads_standard_input_by_default() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::Scratch::new("pipeline-gzip-keeps");
    let secret = dir.path("secret");
    std::fs::write(&secret, "the pile\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path("link");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let out = conlab(&[
        "pipeline",
        "gzip",
        secret.to_str().unwrap(),
        link.to_str().unwrap(),
    ]);
    // The link is named and left out (an error: 1); the file is compressed, mode kept.
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a symbolic link"));
    let mode = std::fs::metadata(dir.path("secret.gz"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!dir.path("link.gz").exists());
    // No INPUT: standard input to standard output, as gzip.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_conlab"))
        .args(["pipeline", "gzip"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"from stdin\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    std::fs::write(dir.path("stdin.gz"), &out.stdout).unwrap();
    assert_eq!(gunzip(&dir.path("stdin.gz")), b"from stdin\n");
    // A closed standard input or output is gzip's "Bad file descriptor", not an empty
    // member or data thrown away; /dev/null is not closed.
    let bin = env!("CARGO_BIN_EXE_conlab");
    let secret = secret.display();
    for (line, closed) in [
        (
            format!("{bin} pipeline gzip - <&- >/dev/null"),
            Some("input"),
        ),
        (
            format!("{bin} pipeline gzip -f -c {secret} >&-"),
            Some("output"),
        ),
        (
            format!("{bin} pipeline gzip -f -c {secret} >/dev/null </dev/null"),
            None,
        ),
    ] {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        match closed {
            Some(what) => {
                assert_eq!(out.status.code(), Some(1), "{line}: {err}");
                assert!(
                    err.contains(&format!("standard {what} is closed")),
                    "{line}: {err}"
                );
            }
            None => assert!(out.status.success(), "{line}: {err}"),
        }
    }
}
