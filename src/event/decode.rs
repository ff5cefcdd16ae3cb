//! Reading an event's fields off its JSON. Every client decodes every event it receives, so
//! at a million deliveries a second this is a large part of what the driver does: the form
//! the server writes ([`super::Event::new`]: the fields in order, then the payload) is read
//! field by field without a parser's generality, and anything else goes to serde.

use super::WireEvent;

/// Parses the fields clients need from an event's JSON.
pub fn decode(json: &[u8]) -> Result<WireEvent, serde_json::Error> {
    match as_written(json) {
        Some(wire) => Ok(wire),
        None => serde_json::from_slice(json),
    }
}

/// The event, when `json` is exactly as the server writes one: `{"id":1,"topic":0,"seq":1,
/// "scheduled_ns":5,"emitted_ns":6,"measured":true,"payload":"abc"}` with a payload of
/// printable ASCII without escapes. `None` for anything else, valid JSON or not.
fn as_written(json: &[u8]) -> Option<WireEvent> {
    let mut r = json;
    let id = number(&mut r, b"{\"id\":")?;
    let topic = u32::try_from(number(&mut r, b",\"topic\":")?).ok()?;
    let seq = number(&mut r, b",\"seq\":")?;
    let scheduled_ns = number(&mut r, b",\"scheduled_ns\":")?;
    let emitted_ns = number(&mut r, b",\"emitted_ns\":")?;
    let r = r.strip_prefix(b",\"measured\":")?;
    let (measured, r) = match r.strip_prefix(b"true") {
        Some(r) => (true, r),
        None => (false, r.strip_prefix(b"false")?),
    };
    let payload = r.strip_prefix(b",\"payload\":\"")?.strip_suffix(b"\"}")?;
    plain(payload).then_some(WireEvent {
        id,
        topic,
        seq,
        scheduled_ns,
        emitted_ns,
        measured,
    })
}

/// Whether `bytes` are printable ASCII without a quote or a backslash, so that inside quotes
/// they are a JSON string as they stand. Eight bytes at a time: a byte of a word is below
/// 0x20, equal to one of the two or 0x7f and above exactly where these bit tricks find it.
fn plain(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Where a byte of `x` is zero, the high bit of that byte in the result is set (and
    // nowhere when no byte is).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let bad = |w: u64| {
        zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            // Below 0x20: the top three bits zero.
            | zero(w & (ONES * 0xe0))
            // 0x7f and above: DEL, or the high bit set.
            | zero(w ^ (ONES * 0x7f))
            | (w & HIGH)
    };
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        if bad(u64::from_le_bytes(c.try_into().expect("eight bytes"))) != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// The unsigned integer after `key` at the start of `r`, which it moves past both: JSON's
/// form (no sign, no leading zero but a lone `0`), at most `u64::MAX`.
fn number(r: &mut &[u8], key: &[u8]) -> Option<u64> {
    let rest = r.strip_prefix(key)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let mut n: u64 = 0;
    for &b in &rest[..digits] {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    *r = &rest[digits..];
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use rand::{Rng, SeedableRng};

    fn by_serde(json: &[u8]) -> Option<WireEvent> {
        serde_json::from_slice(json).ok()
    }

    #[test]
    fn every_event_as_the_server_writes_it_reads_as_serde_reads_it() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for i in 0..2000 {
            // Small numbers, and ones near the top of each type.
            let big = i % 2 == 0;
            let wire = WireEvent {
                id: if big {
                    u64::MAX - rng.gen_range(0..3)
                } else {
                    rng.gen_range(0..1000)
                },
                topic: if big { u32::MAX } else { rng.gen_range(0..10) },
                seq: rng.gen(),
                scheduled_ns: rng.gen(),
                emitted_ns: rng.gen_range(0..2),
                measured: rng.gen(),
            };
            let json = Event::new(wire, rng.gen_range(0..300)).json;
            assert_eq!(
                as_written(&json),
                Some(wire),
                "{}",
                String::from_utf8_lossy(&json)
            );
            assert_eq!(by_serde(&json), Some(wire));
        }
    }

    #[test]
    fn a_plain_string_is_found_by_the_word_as_by_the_byte() {
        let scalar = |bytes: &[u8]| {
            bytes
                .iter()
                .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        };
        for len in [0, 7, 8, 9, 20] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    assert_eq!(plain(&s), scalar(&s), "{b:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn anything_else_goes_to_serde_which_decides() {
        let wire = WireEvent {
            id: 7,
            topic: 2,
            seq: 3,
            scheduled_ns: 10,
            emitted_ns: 12,
            measured: false,
        };
        let ok = String::from_utf8(Event::new(wire, 4).json.to_vec()).unwrap();
        // Valid JSON in another form: serde reads it the same.
        for other in [
            ok.replace("{\"id\":7,\"topic\":2", "{\"topic\":2,\"id\":7"),
            ok.replace(",\"seq\":3", ", \"seq\": 3"),
            ok.replace("abcd", "ab\\\"d"),
            ok.replace("abcd", "abé"),
            ok.replace(",\"payload\":\"abcd\"", ""),
        ] {
            assert_eq!(as_written(other.as_bytes()), None, "{other}");
            assert_eq!(decode(other.as_bytes()).unwrap(), wire, "{other}");
        }
        // Not events: both refuse.
        for bad in [
            ok.replace("\"seq\":3", "\"seq\":03"),
            ok.replace("\"seq\":3", "\"seq\":-3"),
            ok.replace("\"topic\":2", "\"topic\":4294967296"),
            ok.replace("\"id\":7", "\"id\":18446744073709551616"),
            ok.replace("false", "fals"),
            ok.replace("abcd\"}", "abcd"),
            ok.replace("abcd", "ab\u{1}d"),
            ok[..ok.len() - 1].to_string(),
            format!("{ok}x"),
        ] {
            assert_eq!(as_written(bad.as_bytes()), None, "{bad}");
            assert!(decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
