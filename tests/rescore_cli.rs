//! The `triage rescore` command on real files: good and malformed lines, CSV,
//! and resuming an interrupted run without losing or duplicating lines.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn triage() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_triage"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// `triage rescore [flags] INPUT -o OUTPUT`, waited for.
fn rescore(input: &Path, output: &Path, flags: &[&str]) -> std::process::Output {
    triage()
        .arg("rescore")
        .args(flags)
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .unwrap()
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every output line is JSON"))
        .collect()
}

const INPUT: &str = concat!(
    r#"{"id": "a1", "text": "信用卡年费凭什么扣我300元", "channel": "app"}"#,
    "\n",
    r#"{"id": "a2", "text": "#,
    "\n",
    r#"{"id": "a3", "text": "理财产品到期了本金还没到账", "channel": "wechat", "ignored": [1, 2]}"#,
    "\n",
    r#"{"id": "a4"}"#,
    "\n",
    r#"{"id": "a5", "text": "   "}"#,
    "\n",
    r#"{"id": "a6", "text": "催收打电话骚扰我单位同事", "channel": "carrier-pigeon"}"#,
    "\n",
    r#"{"id": "a7", "text": "谢谢客服小王耐心解答"}"#,
    "\n",
);

fn write_input(dir: &Path) -> std::path::PathBuf {
    let input = dir.join("in.jsonl");
    let mut bytes = INPUT.as_bytes().to_vec();
    bytes.extend_from_slice(b"\xff\xfe not utf8\n");
    bytes.extend_from_slice(r#"{"id": "a9", "text": "手机银行转账失败但钱被扣了"}"#.as_bytes());
    bytes.push(b'\n');
    std::fs::write(&input, bytes).unwrap();
    input
}

#[test]
fn every_line_gets_a_result_or_an_error_record_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let output = dir.path().join("out.jsonl");
    let run = rescore(&input, &output, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines = read_jsonl(&output);
    assert_eq!(lines.len(), 9);
    let ids: Vec<Option<&str>> = lines.iter().map(|l| l["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            Some("a1"),
            None,
            Some("a3"),
            Some("a4"),
            Some("a5"),
            Some("a6"),
            Some("a7"),
            None,
            Some("a9")
        ]
    );
    for (i, l) in lines.iter().enumerate() {
        let is_error = l.get("error").is_some();
        assert_eq!(
            is_error,
            [1, 3, 4, 5, 7].contains(&i),
            "line {}: {l}",
            i + 1
        );
        if is_error {
            assert_eq!(l["line"], (i + 1) as u64);
        } else {
            assert!(l["labels"]["product"]["value"].is_string() && l["route"]["queue"].is_string());
        }
    }
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
    assert!(lines[3]["error"]
        .as_str()
        .unwrap()
        .contains("missing `text`"));
    assert_eq!(lines[4]["code"], "empty_text");
    assert_eq!(lines[5]["code"], "unknown_channel");
    assert!(lines[7]["error"].as_str().unwrap().contains("UTF-8"));
    let summary = String::from_utf8_lossy(&run.stderr);
    assert!(
        summary.contains("records 9 (scored 4, errors 5"),
        "{summary}"
    );
    assert!(summary.contains("queues:") && summary.contains("records/s"));
}

#[test]
fn resume_continues_without_duplicates_and_refuses_to_clobber() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let full = dir.path().join("full.jsonl");
    assert!(rescore(&input, &full, &[]).status.success());
    let expected: Vec<Value> = read_jsonl(&full);

    // Simulate a crash: three complete lines and a torn fourth.
    let partial = dir.path().join("partial.jsonl");
    let text = std::fs::read_to_string(&full).unwrap();
    let kept: Vec<&str> = text.lines().take(3).collect();
    std::fs::write(
        &partial,
        format!(
            "{}\n{}",
            kept.join("\n"),
            &text.lines().nth(3).unwrap()[..10]
        ),
    )
    .unwrap();

    let refused = rescore(&input, &partial, &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    let resumed = rescore(&input, &partial, &["--resume"]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("resumed after 3"));
    let got = read_jsonl(&partial);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g["id"], e["id"]);
        assert_eq!(g.get("error"), e.get("error"));
        // Same labels; confidences may differ in the last float digits because
        // batches are padded to different widths.
        for axis in ["product", "category", "severity", "urgency", "sentiment"] {
            assert_eq!(g["labels"][axis]["value"], e["labels"][axis]["value"]);
            let (a, b) = (
                g["labels"][axis]["confidence"].as_f64(),
                e["labels"][axis]["confidence"].as_f64(),
            );
            if let (Some(a), Some(b)) = (a, b) {
                assert!((a - b).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn csv_input_is_scored_and_bad_rows_reported() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(
        &input,
        "id,text,channel\nc1,\"信用卡被盗刷了5万，请马上冻结\",phone\nc2,,app\nc3,贷款利息太高了\n",
    )
    .unwrap();
    let output = dir.path().join("out.jsonl");
    let run = rescore(&input, &output, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines = read_jsonl(&output);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["id"], "c1");
    assert_eq!(lines[0]["amounts"][0], 50000.0);
    assert_eq!(lines[1]["code"], "empty_text");
    assert_eq!(lines[2]["id"], "c3");
    assert!(lines[2]["labels"].is_object());
}

#[test]
fn classify_reads_stdin_and_reports_errors_with_exit_code() {
    use std::io::Write;
    let mut child = triage()
        .args(["classify", "--compact", "--channel", "app"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("年费太贵了，要求退还".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["channel"], "app");

    let bad = triage().args(["classify", ""]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("empty_text"));
}

#[test]
fn a_missing_onnx_runtime_says_how_to_get_it() {
    let out = triage()
        .args(["classify", "年费太贵"])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ONNX Runtime library not found")
            && err.contains("ORT_DYLIB_PATH")
            && err.contains("fetch_onnxruntime.py"),
        "{err}"
    );
}

#[test]
fn a_bad_config_names_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("config/triage.toml")).unwrap();
    let text = text
        .replace(
            "signals = \"signals.toml\"",
            &format!(
                "signals = \"{}\"",
                root.join("config/signals.toml").display()
            ),
        )
        .replace(
            "replies = \"replies/zh-CN.toml\"",
            &format!(
                "replies = \"{}\"",
                root.join("config/replies/zh-CN.toml").display()
            ),
        )
        .replace("queue = \"anti_fraud\"", "queue = \"anti_fruad\"");
    let cfg = dir.path().join("triage.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = triage()
        .args(["classify", "年费太贵", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("triage.toml") && err.contains("anti_fruad") && err.contains("[queues]"),
        "{err}"
    );
}
