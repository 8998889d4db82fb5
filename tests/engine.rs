//! End-to-end behaviour of the engine with the shipped model and config.

use std::path::Path;

use chrono::{DateTime, Utc};
use triage::engine::default_engine;
use triage::{Complaint, Engine, EngineOptions, LoadError, TriageError};

fn engine() -> Engine {
    default_engine(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("shipped model and config load")
}

fn complaint(text: &str, channel: Option<&str>) -> Complaint {
    Complaint {
        id: Some("T-1".into()),
        text: text.into(),
        channel: channel.map(str::to_owned),
        received_at: Some(
            DateTime::parse_from_rfc3339("2026-11-23T10:00:00+08:00")
                .unwrap()
                .with_timezone(&Utc),
        ),
        ..Complaint::default()
    }
}

#[test]
fn card_theft_is_labelled_routed_and_answered() {
    let t = engine()
        .triage(&complaint(
            "我的信用卡昨晚在境外被盗刷了三笔，共计2.3万元，卡一直在我身上，请马上冻结！我的手机13812345678，身份证11010519491231002X",
            Some("phone"),
        ))
        .unwrap();
    assert_eq!(t.label("product"), Some("credit_card"));
    assert_eq!(t.label("category"), Some("fund_security"));
    assert_eq!(t.route.queue, "anti_fraud");
    assert_eq!(t.amounts, vec![23_000.0]);
    for axis in ["product", "category", "severity", "urgency", "sentiment"] {
        let l = &t.labels[axis];
        assert!(l.confidence > 0.0 && l.confidence <= 1.0);
        let runner = l.runner_up.as_ref().expect("runner-up");
        assert!(runner.confidence <= l.confidence && runner.value != l.value);
    }
    // personal data never leaves unmasked, anywhere in the result
    let json = serde_json::to_string(&t).unwrap();
    assert!(
        !json.contains("13812345678") && !json.contains("11010519491231002X"),
        "{json}"
    );
    assert!(t.text_masked.contains("138****5678"));
    assert!(t
        .signals
        .iter()
        .any(|s| s.name == "personal_data" && s.evidence.contains("138****5678")));
    let reply = t.reply.text.as_deref().expect("compliant reply");
    assert!(reply.contains("T-1") && reply.contains("客服电话") && reply.contains("23,000元"));
    assert!(
        reply.contains("110") && reply.contains("96110"),
        "fraud safety advice: {reply}"
    );
    assert!(reply.contains("调解") && reply.contains("仲裁") && reply.contains("诉讼"));
    assert_eq!(
        t.reply.elements,
        [
            "acknowledgement",
            "empathy",
            "restatement",
            "handling",
            "safety",
            "remedies",
            "signoff"
        ]
    );
}

#[test]
fn self_harm_threat_is_raised_to_critical_and_immediate() {
    let t = engine()
        .triage(&complaint(
            "催收天天打电话骚扰我爸妈和单位，我真的不想活了",
            Some("wechat"),
        ))
        .unwrap();
    assert_eq!(t.label("severity"), Some("critical"));
    assert_eq!(t.label("urgency"), Some("immediate"));
    assert!(t.route.notify.contains(&"crisis".to_string()));
    assert!(t
        .signals
        .iter()
        .any(|s| s.name == "self_harm_violence" && s.evidence.contains("不想活")));
    assert!(t.reply.text.as_deref().unwrap().contains("12356"));
    assert_eq!(t.route.first_response_due, "2026-11-23T12:00:00+08:00");
}

#[test]
fn regulator_transfer_notifies_consumer_protection() {
    let t = engine()
        .triage(&complaint(
            "投诉人反映其信用卡年费被重复收取300元，要求退还。",
            Some("regulator"),
        ))
        .unwrap();
    assert!(t.signals.iter().any(|s| s.name == "regulator_channel"));
    assert!(
        t.route.notify.contains(&"consumer_protection".to_string())
            || t.route.queue == "consumer_protection"
    );
    assert!(matches!(
        t.label("severity"),
        Some("high") | Some("critical")
    ));
}

#[test]
fn traditional_full_width_input_is_normalised() {
    let t = engine()
        .triage(&complaint(
            "我的帳戶被凍結了，ＡＴＭ取不了錢，打１２３７８也沒用",
            None,
        ))
        .unwrap();
    assert!(
        t.text_masked.contains("账户被冻结")
            && t.text_masked.contains("ATM")
            && t.text_masked.contains("12378")
    );
    assert!(t.signals.iter().any(|s| s.name == "regulator_intent"));
}

#[test]
fn bad_input_gets_a_clear_error() {
    let e = engine();
    assert!(matches!(
        e.triage(&complaint(" \n ", None)),
        Err(TriageError::EmptyText)
    ));
    let long = "投诉".repeat(3000);
    let err = e.triage(&complaint(&long, None)).unwrap_err();
    assert!(
        matches!(
            err,
            TriageError::TextTooLong {
                chars: 6000,
                max: 5000
            }
        ),
        "{err}"
    );
    let err = e.triage(&complaint("年费太贵", Some("fax"))).unwrap_err();
    assert!(err.to_string().contains("fax") && err.to_string().contains("wechat"));
}

#[test]
fn batch_keeps_order_and_isolates_failures() {
    let e = engine();
    let items = vec![
        complaint("年费太贵了", None),
        complaint("", None),
        complaint("理财产品亏了一半", None),
    ];
    let out = e.triage_batch(&items);
    assert_eq!(out.len(), 3);
    assert!(out[0].is_ok() && out[1].is_err() && out[2].is_ok());
    assert_eq!(out[2].as_ref().unwrap().label("product"), Some("wealth"));
}

#[test]
fn missing_model_directory_says_what_to_do() {
    let opts = EngineOptions {
        model_dir: "/nonexistent/models".into(),
        config: Path::new(env!("CARGO_MANIFEST_DIR")).join("config/triage.toml"),
        sessions: 1,
    };
    let err = Engine::load(&opts).err().expect("must fail");
    assert!(matches!(err, LoadError::Io { .. }));
    assert!(err.to_string().contains("manifest.json"), "{err}");
}

#[test]
fn compliance_rejects_unmasked_data_and_promised_compensation() {
    let e = engine();
    let c = e.drafter().check("我们将赔偿您5000元，请联系13812345678");
    assert!(!c.passed);
    assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
    assert!(e.drafter().check("我们将尽快核实处理。").passed);
}
