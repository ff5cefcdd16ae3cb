//! Any headers and body given to the webhook signature verifier are judged without a panic, and
//! only a signature made with the secret passes.
#![no_main]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use pushpull::modes::webhook::signature::Secret;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: u64 = 1_614_265_330;

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xFF: id, timestamp, signature header, body; the rest is the body.
    let mut parts = data.splitn(4, |b| *b == 0xFF);
    fn text(p: Option<&[u8]>) -> Option<&str> {
        p.and_then(|p| std::str::from_utf8(p).ok())
    }
    let (id, ts, sigs) = (text(parts.next()), text(parts.next()), text(parts.next()));
    let body = parts.next().unwrap_or_default();
    // Arbitrary secrets parse or are refused.
    let _ = Secret::parse(sigs.unwrap_or_default());
    let secret = Secret::parse(SECRET).expect("the test secret parses");
    if secret.verify(id, ts, sigs, body, NOW).is_ok() {
        // Passing means one listed signature is exactly the one the secret makes.
        let (id, ts) = (id.unwrap(), ts.unwrap().trim().parse::<u64>().unwrap());
        let expected = B64.decode(&secret.sign(id, ts, body)[3..]).expect("our own base64");
        let made_by_secret = sigs
            .unwrap()
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|s| B64.decode(s).is_ok_and(|mac| mac == expected));
        assert!(made_by_secret, "accepted a signature the secret did not make");
    }
});
