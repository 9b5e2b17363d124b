//! `server.json`: written by a running server into its data directory, so that the command
//! line finds it (`thermostat backup` asks it for the backup).

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Written at start-up beside the data, removed at clean shutdown: how the CLI finds a running
/// server.
pub const SERVER_FILE: &str = "server.json";

/// How long [`running_server`] waits for the server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What `server.json` holds. Its fields are in the order the JSON has always had them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFile {
    /// Where gRPC is served (`host:port`).
    pub grpc: String,
    /// Where HTTP is served (`host:port`).
    pub http: String,
    /// The server's process id.
    pub pid: u32,
}

impl ServerFile {
    /// Writes the file into `data_dir`.
    ///
    /// # Errors
    /// [`Error::Write`]: the file cannot be written.
    pub fn write(&self, data_dir: &Path) -> Result<()> {
        let path = data_dir.join(SERVER_FILE);
        let text = serde_json::to_string(self)?;
        fs::write(&path, text).map_err(|source| Error::Write { path, source })
    }

    /// Removes the file from `data_dir` at a clean shutdown; a missing file is no error.
    pub fn remove(data_dir: &Path) {
        let _ = fs::remove_file(data_dir.join(SERVER_FILE));
    }
}

/// The running server's HTTP address, if a server is using `data_dir` and answers.
pub fn running_server(data_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(data_dir.join(SERVER_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let http = v["http"].as_str()?.to_owned();
    std::net::TcpStream::connect_timeout(&http.parse().ok()?, CONNECT_TIMEOUT).ok()?;
    Some(http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_written_as_it_always_was() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let http = listener.local_addr().unwrap().to_string();
        let file = ServerFile {
            grpc: "127.0.0.1:1".into(),
            http: http.clone(),
            pid: 42,
        };
        file.write(dir.path()).unwrap();
        let before = serde_json::json!({"pid": 42, "grpc": "127.0.0.1:1", "http": http});
        assert_eq!(
            fs::read_to_string(dir.path().join(SERVER_FILE)).unwrap(),
            before.to_string()
        );
        assert_eq!(running_server(dir.path()), Some(http));
        drop(listener);
        ServerFile::remove(dir.path());
        assert_eq!(running_server(dir.path()), None);
        ServerFile::remove(dir.path());
    }
}
