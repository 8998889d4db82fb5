//! The `triage` command line: classify one complaint, re-score a backlog,
//! train and evaluate models, or serve the HTTP API.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use triage::batch::{self, RescoreOptions};
use triage::train::{self, network::Hyper, TrainOptions};
use triage::{Complaint, Engine, EngineOptions};

#[derive(Parser)]
#[command(
    name = "triage",
    version,
    about = "Complaint triage and routing engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the engine loads its model and configuration from.
#[derive(Args, Clone)]
struct EngineArgs {
    /// Model directory (manifest.json, model.onnx, tokenizer.json).
    #[arg(long, env = "TRIAGE_MODELS", default_value = "models")]
    models: PathBuf,
    /// Configuration file (routing, deadlines, replies).
    #[arg(long, env = "TRIAGE_CONFIG", default_value = "config/triage.toml")]
    config: PathBuf,
}

impl EngineArgs {
    fn load(&self, sessions: usize) -> anyhow::Result<Engine> {
        let opts = EngineOptions {
            model_dir: self.models.clone(),
            config: self.config.clone(),
            sessions,
        };
        Ok(Engine::load(&opts)?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Triage one complaint (argument or standard input) and print the result as JSON.
    Classify(ClassifyArgs),
    /// Re-score a JSONL or CSV file of complaints into JSONL, one line per record.
    Rescore(RescoreArgs),
    /// Serve the HTTP API, the department queues and the try-it page.
    Serve(ServeArgs),
    /// Evaluate the engine (model + rule signals) on labelled JSONL.
    Eval(EvalArgs),
    /// Train the classifiers on labelled JSONL and write a model directory.
    Train(TrainArgs),
}

#[derive(Args)]
struct ClassifyArgs {
    /// Complaint text; read from standard input when omitted.
    text: Option<String>,
    /// Channel it came in on (phone, app, web, wechat, weibo, email, letter, branch, sms, regulator).
    #[arg(long)]
    channel: Option<String>,
    /// Case id to use in the result and the reply.
    #[arg(long)]
    id: Option<String>,
    /// Print compact single-line JSON.
    #[arg(long)]
    compact: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args)]
struct RescoreArgs {
    /// Input: JSONL (`id`, `text`, optional `channel`) or CSV with a header (by extension .csv).
    input: PathBuf,
    /// Output JSONL file.
    #[arg(short, long)]
    output: PathBuf,
    /// Continue an interrupted run: keep the lines already written and go on from there.
    #[arg(long)]
    resume: bool,
    /// Overwrite the output file if it exists.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Complaints per model call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args)]
struct ServeArgs {
    /// Port to listen on (default from config, 8080).
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind (default from config, 127.0.0.1).
    #[arg(long)]
    bind: Option<String>,
    /// Directory for the embedded case store.
    #[arg(long, env = "TRIAGE_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    json_logs: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args)]
struct EvalArgs {
    /// Labelled JSONL (taxonomy record format).
    #[arg(long)]
    data: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Score a baseline instead of the engine.
    #[arg(long, value_parser = ["majority", "keywords"])]
    baseline: Option<String>,
    /// Keyword rules for `--baseline keywords`.
    #[arg(long, default_value = "config/keyword_baseline.toml")]
    keywords: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args)]
struct TrainArgs {
    /// A labelled JSONL file or a directory of them.
    #[arg(long, default_value = "training-data")]
    data: PathBuf,
    /// Model directory to write.
    #[arg(long, default_value = "models")]
    out: PathBuf,
    #[arg(long, default_value = "config/taxonomy.toml")]
    taxonomy: PathBuf,
    /// jieba user dictionary (copied into the model directory).
    #[arg(long, default_value = "config/finance_dict.txt")]
    dict: PathBuf,
    #[arg(long, default_value_t = Hyper::default().seed)]
    seed: u64,
    #[arg(long, default_value_t = Hyper::default().epochs)]
    epochs: usize,
    #[arg(long, default_value_t = Hyper::default().dim)]
    dim: usize,
    #[arg(long, default_value_t = Hyper::default().hidden)]
    hidden: usize,
    #[arg(long, default_value_t = Hyper::default().lr)]
    lr: f32,
    #[arg(long, default_value_t = Hyper::default().token_dropout)]
    token_dropout: f32,
    #[arg(long, default_value_t = Hyper::default().hidden_dropout)]
    hidden_dropout: f32,
    #[arg(long, default_value_t = Hyper::default().weight_decay)]
    weight_decay: f32,
    #[arg(long, default_value_t = Hyper::default().emb_weight_decay)]
    emb_weight_decay: f32,
    #[arg(long, default_value_t = Hyper::default().emb_lr_scale)]
    emb_lr_scale: f32,
    #[arg(long, default_value_t = Hyper::default().class_weight_power)]
    class_weight_power: f32,
    #[arg(long, default_value_t = Hyper::default().batch)]
    batch: usize,
    #[arg(long, default_value_t = 2)]
    min_count: usize,
    /// Validation recall to reach for the top level of each ordinal axis (severity
    /// `critical`, urgency `immediate`) by fitting a decision threshold; 0 disables.
    #[arg(long, default_value_t = 0.90)]
    top_level_recall: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Classify(args) => run_classify(args),
        Command::Rescore(args) => run_rescore(args),
        Command::Serve(args) => run_serve(args),
        Command::Eval(args) => run_eval(args),
        Command::Train(args) => run_train(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let mut opts = TrainOptions::with_defaults(args.data, args.out);
    opts.taxonomy = args.taxonomy;
    opts.user_dict = args.dict;
    opts.min_count = args.min_count;
    opts.top_level_recall = (args.top_level_recall > 0.0).then_some(args.top_level_recall);
    opts.hyper = Hyper {
        seed: args.seed,
        epochs: args.epochs,
        dim: args.dim,
        hidden: args.hidden,
        lr: args.lr,
        token_dropout: args.token_dropout,
        hidden_dropout: args.hidden_dropout,
        weight_decay: args.weight_decay,
        emb_weight_decay: args.emb_weight_decay,
        emb_lr_scale: args.emb_lr_scale,
        class_weight_power: args.class_weight_power,
        batch: args.batch,
        ..Hyper::default()
    };
    train::train(&opts)?;
    Ok(ExitCode::SUCCESS)
}

fn run_classify(args: ClassifyArgs) -> anyhow::Result<ExitCode> {
    let text = match args.text {
        Some(t) => t,
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read standard input")?;
            String::from_utf8(buf).context("standard input is not valid UTF-8")?
        }
    };
    let engine = args.engine.load(1)?;
    let complaint = Complaint {
        id: args.id,
        text,
        channel: args.channel,
        ..Complaint::default()
    };
    match engine.triage(&complaint) {
        Ok(t) => {
            let json = if args.compact {
                serde_json::to_string(&t)?
            } else {
                serde_json::to_string_pretty(&t)?
            };
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            Ok(ExitCode::from(2))
        }
    }
}

fn run_rescore(args: RescoreArgs) -> anyhow::Result<ExitCode> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("cannot start worker threads")?;
    let engine = args.engine.load(threads)?;
    let opts = RescoreOptions {
        input: args.input,
        output: args.output,
        resume: args.resume,
        force: args.force,
        chunk: 2048,
        batch: args.batch,
        progress: std::io::stderr().is_terminal(),
    };
    let summary = batch::rescore(&engine, &opts)?;
    eprint!("{}", summary.render());
    Ok(ExitCode::SUCCESS)
}

fn run_eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    use triage::eval::{self, KeywordBaseline, Predictor};
    let engine = args
        .engine
        .load(std::thread::available_parallelism().map_or(2, |n| n.get()))?;
    let report = match args.baseline.as_deref() {
        None => eval::evaluate_engine(&engine, &args.data)?,
        Some("majority") => {
            eval::evaluate_baseline(&engine, &args.data, Predictor::Majority, None)?
        }
        Some(_) => {
            let kw = KeywordBaseline::load(&args.keywords, &eval::taxonomy_of(&engine))?;
            eval::evaluate_baseline(&engine, &args.data, Predictor::Keywords, Some(&kw))?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,ort=warn"));
    if args.json_logs {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let opts = triage::server::ServeOptions {
        models: args.engine.models,
        config: args.engine.config,
        data_dir: args.data_dir,
        port: args.port,
        bind: args.bind,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let started = std::time::Instant::now();
        let service = triage::server::build(&opts)?;
        let listener = tokio::net::TcpListener::bind(service.addr).await.with_context(|| format!("cannot listen on {}", service.addr))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, ready_ms = started.elapsed().as_millis() as u64, "listening on http://{addr}");
        triage::server::run(service, listener, triage::server::shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}
