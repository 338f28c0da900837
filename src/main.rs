//! The `muxd` daemon: parses the command line, binds the master sockets, prints the
//! `READY` line (and tells systemd, when supervised) and runs the loop with the RESP
//! command set until SIGINT or SIGTERM. SIGHUP reloads the TLS files, on a thread of its
//! own (the files are read off the loop), which hands the new configuration to the loop.
//! Errors get their context here, at the edge; the library's are typed.

mod cli;
mod supervise;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use log::{error, info, warn};

use muxd::commands::CommandService;
use muxd::config::RESERVED_FDS;
use muxd::fd_limit;
use muxd::listener::InheritedSocket;
use muxd::resp::RespCodec;
use muxd::tls::TlsFiles;
use muxd::{ListenAddr, Server, ServerHandle};

fn main() -> ExitCode {
    keep_large_buffers_out_of_the_heap();
    let (cli, order) = cli::Cli::parse_ordered();
    env_logger::Builder::new()
        .filter_level(cli.log_level())
        .parse_env("RUST_LOG")
        .init();
    // SAFETY: no other thread exists yet, and nothing in this process has taken the
    // descriptors a supervisor passed (from 3 on).
    let inherited = unsafe { muxd::listener::activation::take_from_env() };
    match inherited
        .context("muxd could not start")
        .and_then(|inherited| run(&cli, &order, inherited))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("muxd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    cli: &cli::Cli,
    order: &[cli::ListenOrder],
    inherited: Vec<InheritedSocket>,
) -> anyhow::Result<()> {
    let mut config = cli.config(order, inherited)?;
    if let Some(wanted) = config.max_clients {
        config.max_clients = Some(fit_max_clients(wanted));
    }
    let limits = cli.limits();
    let password = cli.password()?;
    let mut service = CommandService::new(limits);
    if let Some(password) = &password {
        service = service.with_password(password);
    }
    let notifier = supervise::Notifier::from_env(cli.supervised)
        .context("NOTIFY_SOCKET names no usable socket")?;
    let mut server =
        Server::bind(config, RespCodec::new(limits), service).context("muxd could not start")?;
    info!(
        "muxd {} pid={} max_clients={}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        server.max_clients()
    );
    if password.is_none() {
        warn_if_exposed(&server.local_addrs());
    }
    let addrs: Vec<String> = server
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "READY {}", addrs.join(" ")).context("writing the READY line")?;
    stdout.flush().context("writing the READY line")?;
    drop(stdout);
    if let Some(notifier) = notifier {
        notifier.ready(&addrs);
        server.set_lifecycle(notifier);
    }
    reload_tls_on_sighup(cli.tls_files()?, server.handle())?;
    server.run().context("the event loop failed")?;
    Ok(())
}

/// On each SIGHUP, reads the TLS files again and, if they load, hands the new
/// configuration to the loop: new connections get it, open ones keep theirs. A file that
/// does not load is logged and the configuration in force stays.
fn reload_tls_on_sighup(
    files: Option<TlsFiles>,
    handle: ServerHandle<RespCodec, CommandService>,
) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([libc::SIGHUP])
        .context("installing the SIGHUP handler")?;
    std::thread::Builder::new()
        .name("sighup".to_owned())
        .spawn(move || {
            for _ in signals.forever() {
                let Some(files) = &files else {
                    info!("received SIGHUP, no TLS files to reload");
                    continue;
                };
                let config = match files.server_config() {
                    Ok(config) => config,
                    Err(e) => {
                        warn!("received SIGHUP, TLS reload failed, keeping the configuration in force error={e}");
                        continue;
                    }
                };
                let cert = files.cert_file.display().to_string();
                let applied = handle.run(move |_, ctx| {
                    ctx.set_tls_config(config);
                    info!("received SIGHUP, TLS configuration reloaded cert={cert}");
                });
                if applied.is_err() {
                    break; // the loop has stopped
                }
            }
        })
        .context("starting the SIGHUP thread")?;
    Ok(())
}

/// Without a password, anyone who can reach a non-loopback TCP address may send commands
/// (Unix sockets are guarded by their file mode).
fn warn_if_exposed(addrs: &[ListenAddr]) {
    for addr in addrs {
        if let Some(socket) = addr.tcp_addr()
            && !socket.ip().is_loopback()
        {
            warn!(
                "listening on a non-loopback address without a password addr={addr} (set --requirepass-file)"
            );
        }
    }
}

/// Client buffers come and go in all sizes. glibc serves large blocks with `mmap` but, by
/// default, raises that threshold each time such a block is freed, after which large
/// buffers come from the heap and their memory stays with the process once the clients are
/// gone. A fixed threshold keeps every buffer of 128 KiB and more in its own mapping, given
/// back to the system when freed.
fn keep_large_buffers_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Raises the open-file limit so `wanted` clients fit, as far as the hard limit allows;
/// returns the client limit that really fits.
fn fit_max_clients(wanted: usize) -> usize {
    let _ = fd_limit::raise(wanted.saturating_add(RESERVED_FDS));
    let fits = fd_limit::current().saturating_sub(RESERVED_FDS).max(1);
    if fits < wanted {
        warn!(
            "open-file limit allows only {fits} clients, lowering max_clients from {wanted} (raise it with ulimit -n)"
        );
        fits
    } else {
        wanted
    }
}
