//! Logs: tracing to the terminal and to `votehub.log` in the data directory.

use std::path::Path;

use tracing_subscriber::fmt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init(data: &Path) {
    let filter = votehub::config::log_filter;
    let terminal = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // Without a usable data directory the hub will not start either; the
    // window says why, and the terminal still gets the log.
    let file = std::fs::create_dir_all(data).ok().map(|()| {
        fmt::layer()
            .with_ansi(false)
            .with_writer(tracing_appender::rolling::never(data, "votehub.log"))
    });
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(terminal)
        .with(file)
        .try_init();
}
