//! Who may use a board behind `tern serve`: a shared secret (a token file), proved by
//! challenge and response so that the token itself never crosses the wire.
//!
//! The exchange (docs/wire.md, "Security"): the client sends `auth` with no payload;
//! the server answers with a fresh 32-byte nonce (or with nothing when it asks no
//! token); the client sends `auth` again carrying `HMAC-SHA256(token, "tern-auth-v1" ‖
//! nonce)`; the server compares it in constant time. Until that succeeds, a server with
//! a token answers every other request `Unauthorized` and closes the connection, before
//! anything touches the board.

use std::io::Read;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{HostError, Result};
use crate::wire::Opcode;

/// Bytes of a challenge and of a proof.
pub const NONCE_BYTES: usize = 32;
pub const PROOF_BYTES: usize = 32;
/// Shortest token accepted: 16 bytes (128 bits when random).
pub const MIN_TOKEN_BYTES: usize = 16;
/// A token file is a line of text, not a document.
const MAX_TOKEN_FILE: u64 = 4096;
/// What the proof's MAC covers before the nonce: a proof for another protocol or
/// version never verifies here.
const CONTEXT: &[u8] = b"tern-auth-v1";

/// A shared secret. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl Secret {
    /// A token from its text (surrounding whitespace, such as the file's newline, is not
    /// part of it).
    pub fn from_text(text: &str, origin: &str) -> Result<Secret> {
        let token = text.trim();
        if token.len() < MIN_TOKEN_BYTES {
            return Err(HostError::Auth(format!(
                "{origin}: the token is {} bytes; at least {MIN_TOKEN_BYTES} are needed \
                 (`tern token --out FILE` writes a random one)",
                token.len()
            )));
        }
        Ok(Secret(token.as_bytes().to_vec()))
    }

    /// Read a token file. Like ssh with its keys, a file that others may read is
    /// refused: anyone who can read it owns the board.
    pub fn from_file(path: &Path) -> Result<Secret> {
        use std::os::unix::fs::PermissionsExt;
        let name = path.display().to_string();
        let file = std::fs::File::open(path)
            .map_err(crate::error::io(format!("reading the token file {name}")))?;
        let meta = file
            .metadata()
            .map_err(crate::error::io(format!("reading the token file {name}")))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(HostError::Auth(format!(
                "token file {name} has mode {mode:03o}: others can read it; `chmod 600 {name}`"
            )));
        }
        if meta.len() > MAX_TOKEN_FILE {
            return Err(HostError::Auth(format!(
                "token file {name} is {} bytes; a token is one line (at most {MAX_TOKEN_FILE} bytes)",
                meta.len()
            )));
        }
        let mut text = String::new();
        file.take(MAX_TOKEN_FILE)
            .read_to_string(&mut text)
            .map_err(crate::error::io(format!("reading the token file {name}")))?;
        Secret::from_text(&text, &format!("token file {name}"))
    }

    /// A new random token: 32 bytes from the operating system, as 64 hex digits.
    pub fn generate() -> Result<Secret> {
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw)
            .map_err(|e| HostError::Auth(format!("no randomness from the system: {e}")))?;
        Ok(Secret(hex(&raw).into_bytes()))
    }

    /// Write the token to `path`, readable by its owner only (refusing to replace a file).
    pub fn write_new(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let name = path.display().to_string();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(crate::error::io(format!("creating the token file {name}")))?;
        f.write_all(&self.0)
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.sync_all())
            .map_err(crate::error::io(format!("writing the token file {name}")))
    }

    /// The proof for `nonce`.
    pub fn proof(&self, nonce: &[u8]) -> [u8; PROOF_BYTES] {
        self.mac(nonce).finalize().into_bytes().into()
    }

    /// Whether `proof` answers `nonce`, compared in constant time.
    pub fn verify(&self, nonce: &[u8], proof: &[u8]) -> bool {
        self.mac(nonce).verify_slice(proof).is_ok()
    }

    fn mac(&self, nonce: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(CONTEXT);
        mac.update(nonce);
        mac
    }
}

/// A fresh challenge.
pub fn nonce() -> Result<[u8; NONCE_BYTES]> {
    let mut n = [0u8; NONCE_BYTES];
    getrandom::getrandom(&mut n)
        .map_err(|e| HostError::Auth(format!("no randomness from the system: {e}")))?;
    Ok(n)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a connection is in the exchange (the server's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthState {
    /// The server asks no token, or the client has proved it.
    Open,
    /// A token is needed and no challenge was sent yet.
    Required,
    /// This challenge was sent; the next `auth` must answer it.
    Challenged([u8; NONCE_BYTES]),
}

impl AuthState {
    pub fn new(secret: Option<&Secret>) -> AuthState {
        match secret {
            Some(_) => AuthState::Required,
            None => AuthState::Open,
        }
    }
}

/// What the server does with one request, as far as the token goes: the one gate both
/// the holder's loop (`server`) and the lobby's answers to waiting clients pass through.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Not `auth`, on a connection that may be served: serve it.
    Pass,
    /// An `auth` request answered: reply Ok with this payload (a nonce, or nothing).
    Answer(Vec<u8>),
    /// Reply `Unauthorized` with this message and close the connection.
    Refuse(String),
}

/// A request of `opcode` whose payload is `len` bytes on a connection in `state`.
/// `payload` holds an `auth` request's bytes; a reader that drops payloads (the lobby)
/// keeps at most [`PROOF_BYTES`] of them, and a longer one is refused by its length.
pub(crate) fn gate(
    state: &mut AuthState,
    secret: Option<&Secret>,
    opcode: u8,
    payload: &[u8],
    len: usize,
) -> Gate {
    if opcode != Opcode::Auth as u8 {
        return match state {
            AuthState::Open => Gate::Pass,
            _ => Gate::Refuse(NEEDS_TOKEN.into()),
        };
    }
    if len > PROOF_BYTES {
        return Gate::Refuse(format!(
            "an auth payload is at most {PROOF_BYTES} bytes, got {len}"
        ));
    }
    match (secret, &*state, payload.len()) {
        // No token asked: a challenge request gets an empty answer, a proof is pointless.
        (None, _, 0) => Gate::Answer(vec![]),
        (None, _, _) => Gate::Refuse("this server asks no token; send no proof".into()),
        (Some(_), AuthState::Open, _) => {
            Gate::Refuse("this connection is already authenticated".into())
        }
        (Some(_), _, 0) => match nonce() {
            Ok(n) => {
                *state = AuthState::Challenged(n);
                Gate::Answer(n.to_vec())
            }
            Err(e) => Gate::Refuse(e.to_string()),
        },
        (Some(secret), AuthState::Challenged(n), PROOF_BYTES) => {
            if secret.verify(n, payload) {
                *state = AuthState::Open;
                Gate::Answer(vec![])
            } else {
                Gate::Refuse("wrong token (the proof does not verify)".into())
            }
        }
        (Some(_), AuthState::Challenged(_), n) => {
            Gate::Refuse(format!("a proof is {PROOF_BYTES} bytes, got {n}"))
        }
        (Some(_), AuthState::Required, _) => {
            Gate::Refuse("a proof before any challenge: send `auth` with no payload first".into())
        }
    }
}

/// What an unauthenticated request is told before the connection is closed.
const NEEDS_TOKEN: &str = "this board requires a token: give the client the server's \
    token file (`--board-token FILE` or TERN_BOARD_TOKEN_FILE; docs/wire.md, Security)";

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::from_text("0123456789abcdef0123\n", "test").unwrap()
    }

    #[test]
    fn a_proof_verifies_for_its_own_nonce_and_token_only() {
        let s = secret();
        let n = [7u8; NONCE_BYTES];
        let p = s.proof(&n);
        assert!(s.verify(&n, &p));
        assert!(!s.verify(&[8u8; NONCE_BYTES], &p));
        let other = Secret::from_text("0123456789abcdef0124", "test").unwrap();
        assert!(!other.verify(&n, &p));
        assert!(!s.verify(&n, &p[..31]));
        // The token is not in the proof, nor in Debug.
        assert!(!format!("{s:?}").contains("0123"));
    }

    #[test]
    fn the_exchange_needs_a_challenge_then_the_right_proof() {
        let s = secret();
        let auth = |state: &mut AuthState, secret: Option<&Secret>, payload: &[u8]| {
            gate(state, secret, Opcode::Auth as u8, payload, payload.len())
        };
        let mut state = AuthState::new(Some(&s));
        // Nothing but `auth` passes before the proof.
        assert_eq!(
            gate(&mut state, Some(&s), Opcode::Read32 as u8, &[], 0),
            Gate::Refuse(NEEDS_TOKEN.into())
        );
        assert!(matches!(
            auth(&mut state, Some(&s), &[0; PROOF_BYTES]),
            Gate::Refuse(_)
        ));
        let Gate::Answer(n) = auth(&mut state, Some(&s), &[]) else {
            panic!("no challenge")
        };
        assert_eq!(n.len(), NONCE_BYTES);
        let wrong = Secret::from_text("not the right token at all", "t").unwrap();
        let mut copy = state.clone();
        assert!(matches!(
            auth(&mut copy, Some(&s), &wrong.proof(&n)),
            Gate::Refuse(m) if m.contains("wrong token")
        ));
        // A payload longer than a proof is refused by its length, kept or not.
        let mut copy = state.clone();
        assert!(matches!(
            gate(&mut copy, Some(&s), Opcode::Auth as u8, &[], PROOF_BYTES + 1),
            Gate::Refuse(m) if m.contains("at most 32 bytes")
        ));
        assert!(matches!(
            auth(&mut state, Some(&s), &s.proof(&n)),
            Gate::Answer(r) if r.is_empty()
        ));
        assert_eq!(state, AuthState::Open);
        assert_eq!(
            gate(&mut state, Some(&s), Opcode::Read32 as u8, &[], 0),
            Gate::Pass
        );
        // Without a token the challenge is answered with nothing.
        let mut open = AuthState::new(None);
        assert!(matches!(auth(&mut open, None, &[]), Gate::Answer(r) if r.is_empty()));
    }

    #[test]
    fn short_tokens_and_readable_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        assert!(Secret::from_text("short\n", "t").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let s = Secret::generate().unwrap();
        s.write_new(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Secret::from_file(&path).unwrap(), s);
        // Never replaced.
        assert!(Secret::generate().unwrap().write_new(&path).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Secret::from_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("mode 644") && err.contains("chmod 600"),
            "{err}"
        );
    }
}
