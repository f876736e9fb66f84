//! The `ward` binary: install the TLS provider, parse the command line, set up logging,
//! dispatch, and turn the outcome into an exit code.

use std::io::{self, Write};
use std::process::ExitCode;

use ward::cli::{self, Cli};

// The pipeline allocates per alert on every stage; glibc's allocator was half the profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Exactly one rustls provider, before any TLS client exists (see CRATES.md §7.1).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help / --version print to stdout and exit 0; usage errors exit 2. A closed
            // stdout while printing help is not worth reporting.
            let _ = err.print();
            let code = u8::try_from(err.exit_code()).unwrap_or(cli::EXIT_USAGE);
            // A monitor reads 2 as CRITICAL: a `ward check` that cannot even start is UNKNOWN.
            let check = std::env::args_os().skip(1).any(|a| a == "check");
            return ExitCode::from(if code != 0 && check {
                cli::EXIT_CHECK_UNKNOWN
            } else {
                code
            });
        }
    };

    if matches!(cli.command, cli::Command::Tui(_)) {
        lean_allocator_for_idling();
    }

    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if cli::is_broken_pipe(&err) => ExitCode::SUCCESS,
        // Already explained on stdout (a check's findings, an unreachable store's status).
        Err(err) if err.is::<cli::Exit>() => ExitCode::from(cli::exit_code(&err)),
        Err(err) => {
            let _ = writeln!(io::stderr(), "error: {err:#}");
            if matches!(cli.command, cli::Command::Check(_)) {
                ExitCode::from(cli::EXIT_CHECK_UNKNOWN)
            } else {
                ExitCode::from(cli::exit_code(&err))
            }
        }
    }
}

/// The control room idles for hours on a terminal: have the allocator commit memory as it is used
/// instead of whole arenas up front (resident memory 23 → 13 MB). mimalloc reads its options from
/// the environment only when the process starts, so set it and start this same command over.
fn lean_allocator_for_idling() {
    use std::os::unix::process::CommandExt;
    const OPTION: &str = "MIMALLOC_ARENA_EAGER_COMMIT";
    if std::env::var_os(OPTION).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // Only returns if the exec failed; then run on as we are.
    let _ = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env(OPTION, "0")
        .exec();
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let config = if cli.command.needs_config() {
        Some(cli.global.load_config()?)
    } else {
        None
    };
    let mut log = config
        .as_ref()
        .map_or_else(|| cli.global.log_without_file(), |c| c.log.clone());
    if cli.command.owns_terminal() && log.file.is_none() {
        log.file = Some(std::env::temp_dir().join("ward-control-room.log"));
    }
    cli::logging::init(&log)?;

    // Not locked for the whole run: `ward up`'s stdout channel writes to it from other threads.
    let mut out = io::stdout();
    cli::dispatch(cli, config.as_ref(), &mut out)?;
    out.flush()?;
    Ok(())
}
