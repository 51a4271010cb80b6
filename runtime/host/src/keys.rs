//! Key files: `<name>.key` holds the 32-byte Ed25519 seed as hex (mode 0600),
//! `<name>.pub` the 32-byte public key as hex.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use tern_core::bundle::{KeyId, SignatureRecord, key_id};
use tern_core::wit::hex_bytes;

/// Lowercase hex of a key id.
pub fn key_id_hex(id: &KeyId) -> String {
    hex_bytes::encode(id)
}

fn read_hex32(path: &Path, what: &str) -> Result<[u8; 32], String> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    parse_hex32(text.trim())
        .ok_or_else(|| format!("{}: expected a {what} as 64 hex characters", path.display()))
}

/// Parses 64 hex characters.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    hex_bytes::decode(s)?.try_into().ok()
}

/// A signing key read from a `.key` file.
pub struct KeyFile {
    /// The key.
    pub key: SigningKey,
}

impl KeyFile {
    /// Reads a private key file.
    pub fn read(path: &Path) -> Result<KeyFile, String> {
        let seed = read_hex32(path, "private key")?;
        Ok(KeyFile {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The public key.
    pub fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs `message`, as a bundle signature record.
    pub fn sign(&self, message: &[u8]) -> SignatureRecord {
        SignatureRecord {
            key_id: key_id(&self.public()),
            signature: self.key.sign(message).to_bytes(),
        }
    }
}

/// Reads a public key from a `.pub` file, or from 64 hex characters given directly.
pub fn read_public(arg: &str) -> Result<[u8; 32], String> {
    let key = match parse_hex32(arg) {
        Some(k) => k,
        None => read_hex32(Path::new(arg), "public key")?,
    };
    VerifyingKey::from_bytes(&key).map_err(|_| format!("{arg}: not a valid Ed25519 public key"))?;
    Ok(key)
}

/// Generates a key pair in `dir` as `<name>.key` (0600) and `<name>.pub`. Refuses to
/// overwrite. Returns the two paths and the public key.
pub fn generate(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf, [u8; 32]), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "key name `{name}` must be letters, digits, - and _"
        ));
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let key_path = dir.join(format!("{name}.key"));
    let pub_path = dir.join(format!("{name}.pub"));
    for p in [&key_path, &pub_path] {
        if p.exists() {
            return Err(format!("{} exists; not overwriting a key", p.display()));
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness from the OS: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&key_path)
        .map_err(|e| format!("cannot create {}: {e}", key_path.display()))?;
    f.write_all(format!("{}\n", hex_bytes::encode(&seed)).as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
    fs::write(&pub_path, format!("{}\n", hex_bytes::encode(&public)))
        .map_err(|e| format!("cannot write {}: {e}", pub_path.display()))?;
    Ok((key_path, pub_path, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_refuse_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("tern-keys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (k, p, public) = generate(&dir, "ops").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&k).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let key = KeyFile::read(&k).unwrap();
        assert_eq!(key.public(), public);
        assert_eq!(read_public(p.to_str().unwrap()).unwrap(), public);
        assert!(
            generate(&dir, "ops")
                .unwrap_err()
                .contains("not overwriting")
        );
        assert!(generate(&dir, "../x").is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
