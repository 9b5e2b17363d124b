use std::process::ExitCode;

use clap::Parser as _;
use thermostat::cli::{Cli, Command, TokenCommand, init_tracing, init_tracing_with};
use thermostat::{commands, demo};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Demo(args) => {
            // The summary goes to stdout; logs only show warnings unless RUST_LOG asks.
            init_tracing_with(args.log_format.unwrap_or_default(), "warn");
            return finish(runtime().and_then(|rt| rt.block_on(demo::run(args))));
        }
        Command::Check { files, strict } => {
            return ExitCode::from(commands::check(&files, strict, &mut out, &mut err));
        }
        Command::Test { files } => {
            return ExitCode::from(commands::test(&files, &mut out, &mut err));
        }
        Command::Backtest(args) => {
            return ExitCode::from(commands::backtest_cmd(&args, &mut out, &mut err));
        }
        Command::Backup { data_dir, to } => {
            return ExitCode::from(commands::backup_cmd(&data_dir, &to, &mut out, &mut err));
        }
        Command::Restore { from, data_dir } => {
            return ExitCode::from(commands::restore_cmd(&from, &data_dir, &mut out, &mut err));
        }
        Command::ExportAlarms { data_dir } => {
            return ExitCode::from(commands::export_alarms_cmd(&data_dir, &mut out, &mut err));
        }
        Command::Simulate(args) => {
            return ExitCode::from(commands::simulate_cmd(&args, &mut out, &mut err));
        }
        Command::Token(TokenCommand::New { role, name }) => {
            return ExitCode::from(commands::token_new(role, name.as_deref(), &mut out));
        }
    };
    let result = runtime().and_then(|runtime| {
        let settings = args.resolve()?;
        init_tracing(settings.log_format);
        Ok(runtime.block_on(commands::serve(settings))?)
    });
    finish(result)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
