//! Standard Webhooks signatures.
//!
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`,
//! keyed with the base64-decoded part of a `whsec_` secret. A header may hold several
//! space-separated signatures (secret rotation); one match is enough. Receivers refuse
//! timestamps more than five minutes from their clock, so a captured request cannot be replayed.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a timestamp may be from the receiver's clock.
pub const TOLERANCE_SECS: u64 = 5 * 60;

/// A signing key, decoded from its `whsec_` form.
#[derive(Clone)]
pub struct Secret {
    /// HMAC-SHA256 keyed with the secret, cloned for each message (the key's schedule is
    /// done once).
    keyed: HmacSha256,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a request was not accepted as signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A `webhook-*` header is absent or not text.
    #[error("missing or unreadable header `{0}`")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a whole number of seconds.
    #[error("`webhook-timestamp` is not a number of seconds")]
    BadTimestamp,
    /// The timestamp is more than [`TOLERANCE_SECS`] from now.
    #[error("timestamp is {0} s away from now (more than {TOLERANCE_SECS} s): a replay or a wrong clock")]
    StaleTimestamp(u64),
    /// No `v1` signature in the header matches.
    #[error("no signature matches")]
    NoMatch,
}

impl Secret {
    /// Parses `whsec_<base64 of 24 to 64 bytes>`.
    pub fn parse(s: &str) -> Result<Secret, String> {
        let b64 = s.strip_prefix("whsec_").ok_or("a secret starts with `whsec_`")?;
        let key = B64
            .decode(b64)
            .map_err(|e| format!("the part after `whsec_` is not base64: {e}"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(format!("a secret holds 24 to 64 bytes, this one {}", key.len()));
        }
        Ok(Secret::keyed(&key))
    }

    fn keyed(key: &[u8]) -> Secret {
        Secret {
            keyed: HmacSha256::new_from_slice(key).expect("HMAC takes any key length"),
        }
    }

    /// A new random 24-byte secret, and its `whsec_` form.
    pub fn generate(rng: &mut impl RngCore) -> (String, Secret) {
        let mut key = vec![0u8; 24];
        rng.fill_bytes(&mut key);
        (format!("whsec_{}", B64.encode(&key)), Secret::keyed(&key))
    }

    fn mac(&self, id: &str, timestamp: u64, body: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        let mut digits = [0u8; 20];
        mac.update(crate::event::decimal(timestamp, &mut digits));
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value for one attempt: `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            B64.encode(self.mac(id, timestamp, body).finalize().into_bytes())
        )
    }

    /// Checks a request's headers and body against this secret at `now` (unix seconds).
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Result<(), VerifyError> {
        let id = id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
        let ts = timestamp.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
        let signatures = signatures.ok_or(VerifyError::MissingHeader("webhook-signature"))?;
        let ts: u64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
        let off = now.abs_diff(ts);
        if off > TOLERANCE_SECS {
            return Err(VerifyError::StaleTimestamp(off));
        }
        let mac = self.mac(id, ts, body);
        // A SHA-256 tag is 32 bytes: decoded on the stack, anything longer is no match.
        let mut tag = [0u8; 64];
        let matched = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|b64| {
                // verify_slice compares in constant time.
                B64.decode_slice(b64, &mut tag)
                    .is_ok_and(|n| mac.clone().verify_slice(&tag[..n]).is_ok())
            });
        if matched {
            Ok(())
        } else {
            Err(VerifyError::NoMatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decimal;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: u64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        assert_eq!(Secret::parse(SECRET).unwrap().sign(ID, TS, BODY), EXPECTED);
    }

    #[test]
    fn verifies_and_rejects() {
        let s = Secret::parse(SECRET).unwrap();
        let ts = TS.to_string();
        assert_eq!(
            s.verify(Some(ID), Some(&ts), Some(EXPECTED), BODY, TS + 10),
            Ok(())
        );
        // Rotation: one of several signatures matching is enough.
        let several = format!("v1,bm9wZQ== {EXPECTED}");
        assert_eq!(s.verify(Some(ID), Some(&ts), Some(&several), BODY, TS), Ok(()));
        assert_eq!(
            s.verify(Some(ID), Some(&ts), Some(EXPECTED), b"{\"test\": 1}", TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            s.verify(Some(ID), Some(&ts), Some(EXPECTED), BODY, TS + 301),
            Err(VerifyError::StaleTimestamp(301))
        );
        assert_eq!(
            s.verify(None, Some(&ts), Some(EXPECTED), BODY, TS),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            s.verify(Some(ID), Some("soon"), Some(EXPECTED), BODY, TS),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn timestamps_are_signed_in_plain_decimal() {
        let mut buf = [0u8; 20];
        for n in [0, 7, 10, 1_614_265_330, u64::MAX] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn secrets_must_be_whsec_base64_of_24_to_64_bytes() {
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(Secret::parse("whsec_c2hvcnQ=").is_err());
        assert!(Secret::parse("whsec_!!!").is_err());
        let (text, secret) = Secret::generate(&mut rand::thread_rng());
        // The generated text parses back to the same key: the same signature.
        let again = Secret::parse(&text).unwrap();
        assert_eq!(again.sign(ID, TS, BODY), secret.sign(ID, TS, BODY));
    }
}
