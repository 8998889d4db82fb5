//! The try-it page in a real browser: headless Chromium loads `/`, the page
//! fills the form from the URL and presses 分析, calls the API and renders the
//! labels, signals, queue and reply. Runs when Chromium is installed (CI
//! installs Debian's `chromium`); TRIAGE_REQUIRE_BROWSER=1 makes its absence a
//! failure rather than a skip.

mod common;

use std::path::Path;
use std::process::Command;

use common::{config_with, TestServer};

fn chromium() -> Option<&'static str> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

fn dump_dom(url: &str, profile: &Path) -> String {
    let browser = chromium().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn page_submits_a_complaint_and_renders_the_result() {
    if chromium().is_none() {
        assert!(
            std::env::var_os("TRIAGE_REQUIRE_BROWSER").is_none(),
            "Chromium is required (apt-get install chromium)"
        );
        eprintln!("skipped: Chromium not installed (apt-get install chromium to run this test)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), "", false);
    let server = TestServer::start(&dir.path().join("data"), &cfg);
    let text = "我的信用卡昨晚被盗刷了2万元，卡还在我身上，再不处理我就打12378投诉！";
    let url = format!(
        "{}/?autorun=1&channel=phone&text={}",
        server.base,
        urlencode(text)
    );
    let dom = dump_dom(&url, &dir.path().join("profile"));
    assert!(
        dom.contains("id=\"result\" class=\"\""),
        "result section shown:\n{dom}"
    );
    assert!(dom.contains("信用卡（credit_card）"), "product rendered");
    assert!(
        dom.contains("资金安全（fund_security）"),
        "category rendered"
    );
    assert!(
        dom.contains("regulator_intent"),
        "signal with evidence rendered"
    );
    assert!(
        dom.contains("反欺诈中心（anti_fraud）"),
        "queue rendered with its name"
    );
    assert!(
        dom.contains("96110") && dom.contains("调解"),
        "drafted reply rendered"
    );

    // the queues view lists every queue
    let dom = dump_dom(
        &format!("{}/?view=queues", server.base),
        &dir.path().join("profile2"),
    );
    assert!(
        dom.contains("消费者权益保护部（consumer_protection）"),
        "queues listed:\n{dom}"
    );
    server.stop().unwrap();
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
