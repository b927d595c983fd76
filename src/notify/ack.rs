//! Ack links: `{web.external_url}/ack/{token}`, where the token names one incident and
//! carries an HMAC of it under a key generated once and kept by the outbox (the file
//! `state_dir/ack.key`, or a row of a shared outbox, so every replica signs and checks
//! with the same key). Only a token lookout made verifies; anything else is "not found",
//! so a link reveals its own incident and nothing more, and incident ids cannot be
//! guessed into acks.

use std::io::Read as _;

use constant_time_eq::constant_time_eq;

use crate::channel::sign::hmac_sha256;
use crate::outbox::Outbox;

/// The name the key is kept under.
const KEY_NAME: &str = "ack";
/// Bytes of the HMAC a token carries (128 bits).
const MAC_BYTES: usize = 16;

/// The key ack tokens are signed with.
#[derive(Clone)]
pub struct AckKey([u8; 32]);

impl std::fmt::Debug for AckKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AckKey(..)")
    }
}

impl AckKey {
    /// The key the outbox keeps, made from the system's random source the first time:
    /// links stay valid across restarts, every installation has its own key, and the
    /// replicas of one installation share it.
    pub async fn load_or_create(outbox: &Outbox) -> Result<AckKey, String> {
        let mut fresh = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut fresh))
            .map_err(|error| format!("cannot read /dev/urandom: {error}"))?;
        let kept = outbox
            .keep_secret(KEY_NAME, hex::encode(fresh))
            .await
            .map_err(|error| error.to_string())?;
        hex::decode(kept.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(AckKey)
            .ok_or_else(|| "the kept ack key is not a 64-digit hex key".to_owned())
    }

    /// The token for incident `id`: `{id}-{hex mac}`.
    pub fn token(&self, id: i64) -> String {
        format!("{id}-{}", hex::encode(self.mac(id)))
    }

    /// The incident a token names, if lookout made it.
    pub fn verify(&self, token: &str) -> Option<i64> {
        let (id, mac) = token.split_once('-')?;
        let id: i64 = id.parse().ok().filter(|id| *id > 0)?;
        let mac = hex::decode(mac).ok()?;
        constant_time_eq(&mac, &self.mac(id)).then_some(id)
    }

    fn mac(&self, id: i64) -> Vec<u8> {
        let mut mac = hmac_sha256(&self.0, format!("lookout ack {id}").as_bytes());
        mac.truncate(MAC_BYTES);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_verify_only_as_made_and_the_key_persists() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open_local(dir.path()).unwrap();
        let key = AckKey::load_or_create(&outbox).await.unwrap();
        let token = key.token(42);
        assert_eq!(key.verify(&token), Some(42));
        let again = AckKey::load_or_create(&Outbox::open_local(dir.path()).unwrap())
            .await
            .unwrap();
        assert_eq!(again.verify(&token), Some(42), "the key survives a restart");
        let forged = token.replacen("42-", "43-", 1);
        assert_eq!(key.verify(&forged), None, "another id with this mac");
        let mut flipped = token.clone();
        flipped.pop();
        flipped.push(if token.ends_with('0') { '1' } else { '0' });
        assert_eq!(key.verify(&flipped), None);
        for junk in ["", "42", "-", "42-", "x-00", "0-00", "-1-00"] {
            assert_eq!(key.verify(junk), None, "{junk}");
        }
        let elsewhere = tempfile::tempdir().unwrap();
        let other = AckKey::load_or_create(&Outbox::open_local(elsewhere.path()).unwrap())
            .await
            .unwrap();
        assert_eq!(other.verify(&token), None, "another installation's key");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("ack.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
