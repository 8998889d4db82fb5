//! Start a real `triage serve` (in-process, ephemeral port, temporary data
//! directory) for integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub const KEY: &str = "test-key-0123456789abcdef";

pub struct TestServer {
    pub base: String,
    pub data_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A config file equal to the shipped one, with `[server]` overrides.
pub fn config_with(dir: &Path, server_overrides: &str, api_key: bool) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join("config/triage.toml")).unwrap();
    text = text.replace(
        "signals = \"signals.toml\"",
        &format!(
            "signals = \"{}\"",
            root.join("config/signals.toml").display()
        ),
    );
    text = text.replace(
        "replies = \"replies/zh-CN.toml\"",
        &format!(
            "replies = \"{}\"",
            root.join("config/replies/zh-CN.toml").display()
        ),
    );
    for line in server_overrides.lines().filter(|l| !l.trim().is_empty()) {
        let key = line.split('=').next().unwrap().trim();
        let start = text
            .find(&format!("\n{key} = "))
            .unwrap_or_else(|| panic!("no `{key}` in [server]"));
        let end = text[start + 1..].find('\n').unwrap() + start + 1;
        text.replace_range(start + 1..end, line.trim());
    }
    if api_key {
        text = text.replace(
            "[server.api_keys]",
            &format!("[server.api_keys]\nops = \"{KEY}\""),
        );
    }
    let path = dir.join("triage.toml");
    std::fs::write(&path, text).unwrap();
    path
}

impl TestServer {
    pub fn start(data_dir: &Path, config: &Path) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let opts = triage::server::ServeOptions {
            models: root.join("models"),
            config: config.to_owned(),
            data_dir: data_dir.to_owned(),
            port: Some(0),
            bind: Some("127.0.0.1".into()),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let service = triage::server::build(&opts)?;
                let listener = tokio::net::TcpListener::bind(service.addr).await?;
                addr_tx.send(listener.local_addr()?).unwrap();
                triage::server::run(service, listener, async move {
                    let _ = rx.await;
                })
                .await
            })
        });
        let addr = addr_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("server started");
        Self {
            base: format!("http://{addr}"),
            data_dir: data_dir.to_owned(),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Trigger graceful shutdown and wait for it; returns the server's result.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.take().unwrap().send(()).ok();
        self.handle.take().unwrap().join().expect("server thread")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
        }
    }
}
