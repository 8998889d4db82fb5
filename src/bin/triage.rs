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
#[command(name = "triage", version, about = "Complaint triage and routing engine")]
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
        let opts = EngineOptions { model_dir: self.models.clone(), config: self.config.clone(), sessions };
        Ok(Engine::load(&opts)?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Triage one complaint (argument or standard input) and print the result as JSON.
    Classify(ClassifyArgs),
    /// Re-score a JSONL or CSV file of complaints into JSONL, one line per record.
    Rescore(RescoreArgs),
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
    #[arg(long, default_value_t = 2)]
    min_count: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Classify(args) => run_classify(args),
        Command::Rescore(args) => run_rescore(args),
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
    opts.hyper = Hyper {
        seed: args.seed,
        epochs: args.epochs,
        dim: args.dim,
        hidden: args.hidden,
        lr: args.lr,
        token_dropout: args.token_dropout,
        hidden_dropout: args.hidden_dropout,
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
            std::io::stdin().read_to_end(&mut buf).context("cannot read standard input")?;
            String::from_utf8(buf).context("standard input is not valid UTF-8")?
        }
    };
    let engine = args.engine.load(1)?;
    let complaint = Complaint { id: args.id, text, channel: args.channel, ..Complaint::default() };
    match engine.triage(&complaint) {
        Ok(t) => {
            let json = if args.compact { serde_json::to_string(&t)? } else { serde_json::to_string_pretty(&t)? };
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
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().context("cannot start worker threads")?;
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
