use std::process::ExitCode;

use clap::Parser as _;
use thermostat::cli::{Cli, Command, init_tracing};
use thermostat::{app, commands};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Check { files } => {
            return ExitCode::from(commands::check(&files, &mut out, &mut err));
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
        Command::Simulate(args) => {
            return ExitCode::from(commands::simulate_cmd(&args, &mut out, &mut err));
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = args.resolve().and_then(|settings| {
        init_tracing(settings.log_format);
        runtime.block_on(app::serve(settings))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
