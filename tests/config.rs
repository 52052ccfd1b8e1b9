//! `iris.toml`: precedence (flag > environment > file > default), `iris config check` errors and exit
//! codes, the README's table against the options, and `serve` taking a value from the file.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use support::{iris, iris_env, ok, repo, stdout};

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("iris.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The line of `iris config show` for `name` (within its section).
fn shown<'a>(show: &'a str, name: &str) -> &'a str {
    show.lines()
        .find(|l| l.starts_with(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no `{name}` in:\n{show}"))
}

#[test]
fn flag_beats_environment_beats_file_beats_default() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = write(
        tmp.path(),
        "[query]\ntimeout_s = 111\nheavy = 3\n[server]\nseal_threshold = 5\n[store]\ndata = \"/from/file\"\n",
    );
    // `iris()` passes --data: the flag beats the file's store.data.
    let o = ok(
        iris_env(
            tmp.path(),
            &["--config", &file, "config", "show"],
            &[("IRIS_QUERY_TIMEOUT", "222")],
        ),
        "config show",
    );
    let show = stdout(&o);
    assert!(
        shown(&show, "timeout_s").contains("222  # env IRIS_QUERY_TIMEOUT"),
        "{show}"
    );
    assert!(shown(&show, "heavy").contains("3  # file"), "{show}");
    assert!(
        shown(&show, "seal_threshold").contains("5  # file"),
        "{show}"
    );
    assert!(
        shown(&show, "memory_mb").contains("2048  # default"),
        "{show}"
    );
    assert!(shown(&show, "data").ends_with("# flag"), "{show}");
    // Without the flag, the environment beats the file; without both, the file holds.
    let run = |env: &[(&str, &str)]| {
        let o = Command::new(env!("CARGO_BIN_EXE_iris"))
            .args(["--config", &file, "config", "show"])
            .current_dir(repo())
            .env_remove("IRIS_DATA")
            .envs(env.iter().copied())
            .output()
            .expect("iris runs");
        stdout(&ok(o, "config show"))
    };
    let show = run(&[("IRIS_DATA", "/from/env")]);
    assert!(
        shown(&show, "data").contains("\"/from/env\"  # env IRIS_DATA"),
        "{show}"
    );
    let show = run(&[]);
    assert!(
        shown(&show, "data").contains("\"/from/file\"  # file"),
        "{show}"
    );
}

#[test]
fn config_check_names_unknown_keys_wrong_types_and_bad_values_with_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let check = |text: &str| {
        let file = write(tmp.path(), text);
        iris(tmp.path(), &["config", "check", &file])
    };
    let o = check("[query]\nmemory_mb = 512\n[server]\nlisten = \"0.0.0.0:9000\"\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("OK (2 of"), "{}", stdout(&o));

    let o = check("[query]\nmemory_mb = 512\ntimout_s = 5\n");
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("iris.toml:3: unknown key `query.timout_s` (did you mean `query.timeout_s`?)"),
        "{e}"
    );

    let o = check("[sever]\nlisten = \"127.0.0.1:1\"\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown key `sever`"), "{}", stderr(&o));

    let o = check("[query]\n\ntimeout_s = \"soon\"\n");
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("line 3, column 13") && e.contains("soon"), "{e}");

    let o = check("[server]\nlisten = \"nowhere\"\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));

    let o = check("[query]\nheavy = 0\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("query.heavy (from file") && stderr(&o).contains("at least 1"),
        "{}",
        stderr(&o)
    );

    // Values past what the server can hold (red team: a sealer whose clock overflowed, a semaphore
    // that panicked at start) are refused by the check, for each bounded key.
    for (text, key) in [
        (
            "[server]\nseal_interval_s = 9223372036854775807\n",
            "server.seal_interval_s",
        ),
        ("[witness]\ninterval_s = 86401\n", "witness.interval_s"),
        ("[query]\ntimeout_s = 604801\n", "query.timeout_s"),
        ("[query]\nheavy = 2305843009213693952\n", "query.heavy"),
    ] {
        let o = check(text);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert!(
            stderr(&o).contains(key) && stderr(&o).contains("more than"),
            "{}",
            stderr(&o)
        );
    }

    let o = check("[store]\nurl = \"ftp://x\"\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("store.url"), "{}", stderr(&o));

    // A file that is not there, and a bad environment value.
    let o = iris(tmp.path(), &["config", "check", "/no/such/iris.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    let file = write(tmp.path(), "");
    let o = iris_env(
        tmp.path(),
        &["config", "check", &file],
        &[("IRIS_SEAL_THRESHOLD", "lots")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("IRIS_SEAL_THRESHOLD"), "{}", stderr(&o));
    // Other commands refuse to run on a bad file too.
    let file = write(tmp.path(), "[query]\nheavy = -1\n");
    let o = iris(tmp.path(), &["--config", &file, "verify"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("heavy"), "{}", stderr(&o));
}

#[test]
fn the_readme_table_is_every_option_and_every_option_is_settable() {
    let tmp = tempfile::tempdir().expect("tmp");
    let table = stdout(&ok(iris(tmp.path(), &["config", "keys"]), "config keys"));
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    assert!(
        readme.contains(&table),
        "README's configuration table differs from `iris config keys`:\n{table}"
    );
    // Every documented key set in one file (its documented default, or a sample value) passes the
    // check: each exists in the settings with the documented type.
    let mut file = String::new();
    let mut section = "";
    for row in table.lines().skip(2) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let key = cells[1].trim_matches('`');
        let default = cells[4].trim_matches('`');
        let (sec, name) = key.split_once('.').expect("section.name");
        if sec != section {
            file.push_str(&format!("[{sec}]\n"));
            section = sec;
        }
        let value = match default {
            "—" => match key {
                "store.url" => "\"s3://bucket/prefix\"".to_owned(),
                "server.metrics_listen" => "\"127.0.0.1:9464\"".to_owned(),
                "retention.days" => "30".to_owned(),
                _ => "\"/some/path\"".to_owned(),
            },
            "[]" | "true" | "false" => default.to_owned(),
            d if d.parse::<u64>().is_ok() => d.to_owned(),
            d => format!("{d:?}"),
        };
        file.push_str(&format!("{name} = {value}\n"));
    }
    let path = write(tmp.path(), &file);
    let o = iris(tmp.path(), &["config", "check", &path]);
    assert_eq!(o.status.code(), Some(0), "{file}\n{}", stderr(&o));
    let keys = table.lines().count() - 2;
    assert!(
        stdout(&o).contains(&format!("OK ({keys} of {keys} keys set)")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn serve_listens_where_the_file_says() {
    let tmp = tempfile::tempdir().expect("tmp");
    ok(iris(tmp.path(), &["keygen", "--id", "k1"]), "keygen");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let file = write(
        tmp.path(),
        &format!("[server]\nlisten = \"127.0.0.1:{port}\"\nseal_interval_s = 3600\n"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_iris"))
        .arg("--data")
        .arg(tmp.path())
        .args(["--config", &file, "serve"])
        .current_dir(repo())
        .env("IRIS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let out = child.stdout.take().expect("stdout");
    let line = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("Iris listening on "));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        line.as_deref(),
        Some(format!("Iris listening on http://127.0.0.1:{port}").as_str())
    );
}

#[test]
fn each_command_shows_only_its_own_options() {
    let tmp = tempfile::tempdir().expect("tmp");
    let help = |cmd: &str| stdout(&ok(iris(tmp.path(), &[cmd, "--help"]), cmd));
    let verify = help("verify");
    assert!(!verify.contains("--query-memory"), "{verify}");
    assert!(!verify.contains("--max-seq-jump"), "{verify}");
    assert!(verify.contains("--data"), "{verify}");
    let sql = help("sql");
    assert!(
        sql.contains("--query-timeout") && !sql.contains("--wal-mirror"),
        "{sql}"
    );
    let import = help("import");
    assert!(
        import.contains("--max-seq-jump") && !import.contains("--heavy-queries"),
        "{import}"
    );
    let serve = help("serve");
    for flag in [
        "--listen",
        "--query-memory",
        "--wal-mirror",
        "--seal-interval",
    ] {
        assert!(serve.contains(flag), "{flag}: {serve}");
    }
}
