//! The HTTP service end to end: every route, every documented error,
//! idempotency, repeat detection, persistence across restarts, overload and
//! graceful shutdown.

mod common;

use std::time::Duration;

use common::{config_with, TestServer, KEY};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn error_code(resp: reqwest::blocking::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().expect("errors are JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (status, body["error"]["code"].as_str().unwrap().to_owned())
}

#[test]
fn classify_routes_and_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), "max_body_bytes = 65536", false);
    let server = TestServer::start(&dir.path().join("data"), &cfg);
    let c = client();

    let r = c
        .post(server.url("/v1/classify"))
        .json(&json!({"text": "我的信用卡被盗刷了5万元，请马上冻结", "channel": "app", "id": "k1"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    assert_eq!(t["id"], "k1");
    assert_eq!(t["labels"]["product"]["value"], "credit_card");
    assert_eq!(t["route"]["queue"], "anti_fraud");
    assert!(t["reply"]["text"].as_str().unwrap().contains("k1"));

    let r = c.post(server.url("/v1/classify/batch")).json(&json!({"items": [{"text": "年费太贵"}, {"text": " "}, {"text": "理财亏了", "channel": "fax"}, {"text": "谢谢客服"}]})).send().unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().unwrap();
    let results = b["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(results[0]["labels"].is_object() && results[3]["labels"].is_object());
    assert_eq!(results[1]["error"]["code"], "empty_text");
    assert_eq!(results[2]["error"]["code"], "unknown_channel");

    let too_many: Vec<Value> = (0..1001).map(|_| json!({"text": "年费"})).collect();
    let r = c
        .post(server.url("/v1/classify/batch"))
        .json(&json!({"items": too_many}))
        .send()
        .unwrap();
    assert_eq!(
        error_code(r),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_many_items".into())
    );

    let r = c
        .post(server.url("/v1/classify"))
        .json(&json!({"text": "  \n "}))
        .send()
        .unwrap();
    assert_eq!(
        error_code(r),
        (StatusCode::UNPROCESSABLE_ENTITY, "empty_text".into())
    );
    let r = c
        .post(server.url("/v1/classify"))
        .json(&json!({"txt": "年费"}))
        .send()
        .unwrap();
    assert_eq!(
        error_code(r),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request".into())
    );
    let r = c
        .post(server.url("/v1/classify"))
        .header("content-type", "application/json")
        .body("{\"text\": ")
        .send()
        .unwrap();
    assert_eq!(
        error_code(r),
        (StatusCode::BAD_REQUEST, "invalid_json".into())
    );
    let r = c
        .post(server.url("/v1/classify"))
        .header("content-type", "text/plain")
        .body("年费")
        .send()
        .unwrap();
    assert_eq!(
        error_code(r),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".into()
        )
    );
    let r = c
        .post(server.url("/v1/classify"))
        .json(&json!({"text": "投诉".repeat(3000)}))
        .send()
        .unwrap();
    assert_eq!(
        error_code(r),
        (StatusCode::PAYLOAD_TOO_LARGE, "text_too_long".into())
    );
    let r = c
        .post(server.url("/v1/classify"))
        .json(&json!({"text": "投".repeat(40_000)}))
        .send()
        .unwrap();
    assert_eq!(
        error_code(r),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );
    let r = c.get(server.url("/v1/nothing")).send().unwrap();
    assert_eq!(error_code(r).0, StatusCode::NOT_FOUND);

    // service routes
    assert_eq!(
        c.get(server.url("/healthz"))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()["status"],
        "ok"
    );
    let ready: Value = c.get(server.url("/readyz")).send().unwrap().json().unwrap();
    assert_eq!(ready["store"], "ok");
    assert!(ready["model"]["version"].is_string());
    let api: Value = c
        .get(server.url("/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    for path in [
        "/v1/classify",
        "/v1/classify/batch",
        "/v1/cases",
        "/v1/cases/{id}",
        "/v1/cases/{id}/ack",
        "/v1/cases/{id}/resolve",
        "/v1/queues",
        "/v1/queues/{queue}",
    ] {
        assert!(
            api["paths"][path].is_object(),
            "{path} missing from openapi.json"
        );
    }
    let page = c.get(server.url("/")).send().unwrap().text().unwrap();
    assert!(page.contains("投诉智能分类") && page.contains("/v1/classify"));
    let metrics = c
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("triage_http_requests_total{route=\"/v1/classify\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("triage_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("triage_inference_seconds_count"));
    assert!(metrics.contains("triage_cases_open{queue=\"anti_fraud\"} 0"));
    assert!(metrics.contains("triage_cases_overdue"));
    server.stop().unwrap();
}

#[test]
fn cases_queues_keys_idempotency_repeats_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config_with(dir.path(), "", true);
    let server = TestServer::start(&data, &cfg);
    let c = client();
    let auth =
        |rb: reqwest::blocking::RequestBuilder| rb.header("Authorization", format!("Bearer {KEY}"));

    // keys protect cases and queues, not classify
    let r = c
        .post(server.url("/v1/cases"))
        .json(&json!({"text": "年费"}))
        .send()
        .unwrap();
    assert_eq!(
        error_code(r),
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    let r = c
        .get(server.url("/v1/queues"))
        .header("X-API-Key", "wrong-key-0123456789")
        .send()
        .unwrap();
    assert_eq!(error_code(r).0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        c.post(server.url("/v1/classify"))
            .json(&json!({"text": "年费太贵"}))
            .send()
            .unwrap()
            .status(),
        200
    );

    // idempotent create
    let body = json!({"id": "case-1", "text": "催收每天打电话骚扰我单位同事，我的手机13812345678", "channel": "wechat", "customer_id": "cust-9"});
    let r = auth(c.post(server.url("/v1/cases")))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().unwrap();
    assert_eq!(first["status"], "open");
    assert!(
        !first.to_string().contains("13812345678"),
        "stored text is masked"
    );
    let r = auth(c.post(server.url("/v1/cases")))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().unwrap();
    assert_eq!(again["created_at"], first["created_at"]);
    assert_eq!(again["audit"].as_array().unwrap().len(), 1);

    // repeat: same customer, same category, first case still open
    let category = first["triage"]["labels"]["category"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = auth(c.post(server.url("/v1/cases")))
        .json(&json!({"id": "case-2", "text": "催收又打电话到我公司了，骚扰我的领导和同事", "customer_id": "cust-9"}))
        .send()
        .unwrap();
    let second: Value = r.json().unwrap();
    if second["triage"]["labels"]["category"]["value"] == category.as_str() {
        assert_eq!(second["repeat_of"], "case-1");
        assert!(second["triage"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "repeat_complaint"));
        let notify = second["triage"]["route"]["notify"].as_array().unwrap();
        assert!(
            notify.iter().any(|q| q == "consumer_protection")
                || second["triage"]["route"]["queue"] == "consumer_protection"
        );
    } else {
        panic!(
            "the two collection complaints were classified differently: {category} vs {}",
            second["triage"]["labels"]["category"]
        );
    }
    let queue = first["queue"].as_str().unwrap().to_owned();

    // queues
    let qs: Value = auth(c.get(server.url("/v1/queues")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let q = qs["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == queue.as_str())
        .unwrap()
        .clone();
    assert!(q["open"].as_u64().unwrap() >= 1 && q["nearest_deadline"].is_string());
    assert_eq!(qs["queues"].as_array().unwrap().len(), 13);
    let list: Value = auth(c.get(server.url(&format!("/v1/queues/{queue}?limit=1"))))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);
    let r = auth(c.get(server.url("/v1/queues/nowhere")))
        .send()
        .unwrap();
    assert_eq!(error_code(r).0, StatusCode::NOT_FOUND);
    let r = auth(c.get(server.url("/v1/cases/nope"))).send().unwrap();
    assert_eq!(error_code(r).0, StatusCode::NOT_FOUND);

    // state changes with audit
    let acked: Value = auth(c.post(server.url("/v1/cases/case-1/ack")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(acked["status"], "acknowledged");
    let r = auth(c.post(server.url("/v1/cases/case-1/ack")))
        .send()
        .unwrap();
    assert_eq!(error_code(r), (StatusCode::CONFLICT, "conflict".into()));
    let r = auth(c.post(server.url("/v1/cases/case-1/resolve")))
        .json(&json!({"note": " "}))
        .send()
        .unwrap();
    assert_eq!(
        error_code(r),
        (StatusCode::UNPROCESSABLE_ENTITY, "note_required".into())
    );
    let resolved: Value = auth(c.post(server.url("/v1/cases/case-1/resolve")))
        .json(&json!({"note": "已联系催收机构整改"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(resolved["status"], "resolved");
    let actions: Vec<&str> = resolved["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["created", "acknowledge", "resolve"]);
    assert!(resolved["audit"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["actor"] == "ops"));
    server.stop().unwrap();

    // persistence across a restart
    let server = TestServer::start(&data, &cfg);
    let back: Value = auth(c.get(server.url("/v1/cases/case-1")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(back["status"], "resolved");
    assert_eq!(back["audit"].as_array().unwrap().len(), 3);
    let two: Value = auth(c.get(server.url("/v1/cases/case-2")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(two["status"], "open");
    server.stop().unwrap();
}

#[test]
fn overload_is_refused_with_retry_after_and_shutdown_drains() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), "queue_capacity = 1\nmax_batch = 8", false);
    let server = TestServer::start(&dir.path().join("data"), &cfg);
    let items: Vec<Value> = (0..1000).map(|i| json!({"text": format!("我的信用卡第{i}次被盗刷了，请马上处理，不然我就去12378投诉")})).collect();
    let body = json!({"items": items});
    let url = server.url("/v1/classify/batch");
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                let r = client().post(url).json(&body).send().unwrap();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (r.status(), retry)
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let refused: Vec<_> = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(
        !refused.is_empty(),
        "a full queue must refuse: {outcomes:?}"
    );
    assert!(refused.iter().all(|(_, r)| r.as_deref() == Some("1")));
    assert!(outcomes.iter().any(|(s, _)| *s == StatusCode::OK));

    // graceful shutdown: a request in flight when shutdown starts still completes
    let inflight = {
        let (url, body) = (url.clone(), body.clone());
        std::thread::spawn(move || client().post(url).json(&body).send().unwrap().status())
    };
    std::thread::sleep(Duration::from_millis(30));
    let data_dir = server.data_dir.clone();
    server.stop().expect("clean shutdown");
    assert_eq!(inflight.join().unwrap(), StatusCode::OK);
    // the store was checkpointed and closed
    let wal = data_dir.join("cases.sqlite3-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
}

#[test]
fn sigterm_stops_the_real_binary_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["serve", "--port", &port.to_string(), "--data-dir"])
        .arg(dir.path().join("data"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let c = client();
    let ready = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        c.get(format!("{base}/readyz"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    assert!(ready, "server became ready");
    let r = c
        .post(format!("{base}/v1/cases"))
        .json(&json!({"id": "t-1", "text": "年费太贵了，手机13812345678"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}: {log}", out.status);
    assert!(
        log.contains("shutdown signal received") && log.contains("stopped cleanly"),
        "{log}"
    );
    assert!(!log.contains("13812345678"), "no personal data in logs");
}
