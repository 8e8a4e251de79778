//! The two secrets a node reads at start: the cluster key file (peer frame
//! MACs) and the client bearer token file. Read once; never logged.
use std::path::Path;

use super::error::{ConfigError, Origin};
use super::model::ClientToken;

/// Reads the secret file at `path` with `read`; a failure is a configuration
/// error naming `field`.
fn read_secret<T>(
    origin: &Origin<'_>,
    field: &str,
    path: &Path,
    from_file: bool,
    read: impl FnOnce(&Path) -> std::io::Result<T>,
) -> Result<T, ConfigError> {
    read(path).map_err(|error| {
        origin.error(
            field,
            from_file,
            format!("cannot read {}: {error}", path.display()),
        )
    })
}

/// Reads and derives the cluster key; a missing, unreadable or too-short
/// file is a configuration error naming `cluster_key_file`.
pub(super) fn cluster_key(
    origin: &Origin<'_>,
    path: &Path,
    from_file: bool,
) -> Result<wire::ClusterKey, ConfigError> {
    let field = "cluster_key_file";
    let secret = read_secret(origin, field, path, from_file, |path| std::fs::read(path))?;
    wire::ClusterKey::from_secret(&secret)
        .map_err(|error| origin.error(field, from_file, format!("{}: {error}", path.display())))
}

/// Reads the bearer token: the file's text without surrounding whitespace,
/// at least 16 visible ASCII characters (it travels in an HTTP header).
pub(super) fn client_token(
    origin: &Origin<'_>,
    path: &Path,
    from_file: bool,
) -> Result<ClientToken, ConfigError> {
    let field = "client_token_file";
    let text = read_secret(origin, field, path, from_file, |path| {
        std::fs::read_to_string(path)
    })?;
    let token = text.trim();
    if token.len() < 16 || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(origin.error(
            field,
            from_file,
            format!(
                "{}: the token must be at least 16 visible ASCII characters",
                path.display()
            ),
        ));
    }
    Ok(ClientToken(token.to_owned()))
}
