//! What the process does around a running server: signals (SIGINT/SIGTERM stop it, SIGXFSZ
//! becomes a write error) and the data directory a failed start must not leave behind.

/// The data directory (and the folders above it) that a start is about to create, removed
/// when dropped unless [`keep`](Self::keep) was called: a failed start leaves nothing behind.
/// Nothing that existed before the start (even a dangling symbolic link) is ever removed.
pub(crate) struct CreatedDataDir(Option<std::path::PathBuf>);

impl CreatedDataDir {
    /// The topmost missing folder of `dir`, `None` when `dir` exists.
    pub(crate) fn before_start(dir: &std::path::Path) -> Self {
        let mut top = None;
        let mut next = Some(dir);
        while let Some(d) = next {
            if d.as_os_str().is_empty() || std::fs::symlink_metadata(d).is_ok() {
                break;
            }
            top = Some(d.to_path_buf());
            next = d.parent();
        }
        CreatedDataDir(top)
    }

    /// The start succeeded: keep the directory.
    pub(crate) fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for CreatedDataDir {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else { return };
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::debug!(dir = %dir.display(), "Removed the data directory this failed start created.")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "Could not remove the data directory this failed start created.")
            }
        }
    }
}

/// With a file-size limit (`ulimit -f`), a write beyond it raises SIGXFSZ, whose default action
/// kills the process. Handling the signal turns it into a write error (EFBIG) instead, which
/// the write-ahead log reports to the client like a full disk: the push is refused, nothing
/// acknowledged is lost, and the server keeps serving.
#[cfg(unix)]
pub(crate) fn file_size_limit_is_an_error() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        const SIGXFSZ: i32 = 25;
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ)) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        tracing::warn!("A write went beyond the file-size limit (SIGXFSZ); it fails like a full disk.");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "Cannot handle SIGXFSZ; a file-size limit would stop the process."),
        }
    });
}

/// Listens for SIGINT and SIGTERM from the moment it is called, and completes on the first.
///
/// The handlers are installed at the call, not when the future is first polled: a process
/// that calls this before it starts serving never dies from a signal that arrives while it
/// starts (it stops cleanly as soon as it has started instead). Must be called within a Tokio
/// runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let one = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = one(interrupt) => {},
                _ = one(terminate) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
