//! The `pushpull` command: parse, set up logging, call the library, map failure to an exit code
//! (0 ok, 1 run failed, 2 bad input, 3 a threshold failed).

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

// The server and the driver allocate per request and per delivery from many threads; glibc's
// allocator spent a tenth of their CPU there in the webhook benchmark (perf), mimalloc far less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("PUSHPULL_LOG").unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = pushpull::cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(pushpull::app::execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
