//! An incremental `text/event-stream` parser (WHATWG HTML §9.2.6) that allocates nothing per
//! event: fields are read off the bytes as they come, into buffers the parser keeps, and each
//! dispatched event is lent to the caller as slices of those buffers.

/// One dispatched event, borrowed from the parser until the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseFrame<'a> {
    /// The `event:` type (`message` when absent).
    pub event: &'a [u8],
    /// The `data:` lines joined by newlines.
    pub data: &'a [u8],
    /// The `id:` field, if the event set one.
    pub id: Option<&'a [u8]>,
}

/// The parser's state between calls: a line cut by the end of a chunk, and the fields of the
/// event being read.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    event: Vec<u8>,
    id: Vec<u8>,
    has_data: bool,
    has_id: bool,
    /// The last `retry:` value seen, in ms.
    pub retry_ms: Option<u64>,
}

impl SseParser {
    /// Feeds bytes, handing `on_event` each event they complete, in order.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_event: impl FnMut(SseFrame<'_>)) {
        while let Some(end) = memchr::memchr(b'\n', bytes) {
            let (head, rest) = (&bytes[..end], &bytes[end + 1..]);
            bytes = rest;
            if self.line.is_empty() {
                self.line_done(strip_cr(head), &mut on_event);
            } else {
                // The line began in an earlier chunk: finish it in the carried buffer (taken
                // out for the call, and put back with its capacity).
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.line_done(strip_cr(&line), &mut on_event);
                line.clear();
                self.line = line;
            }
        }
        self.line.extend_from_slice(bytes);
    }

    fn line_done(&mut self, line: &[u8], on_event: &mut impl FnMut(SseFrame<'_>)) {
        if line.is_empty() {
            if self.has_data {
                on_event(SseFrame {
                    event: if self.event.is_empty() {
                        b"message"
                    } else {
                        &self.event
                    },
                    data: &self.data,
                    id: self.has_id.then_some(&self.id[..]),
                });
            }
            self.data.clear();
            self.event.clear();
            (self.has_data, self.has_id) = (false, false);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            b"id" if !value.contains(&0) => {
                self.id.clear();
                self.id.extend_from_slice(value);
                self.has_id = true;
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry_ms = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .or(self.retry_ms);
            }
            _ => {}
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event `chunks` complete, owned: (type, data, id).
    fn parse(p: &mut SseParser, chunk: &[u8]) -> Vec<(String, String, Option<String>)> {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        let mut out = Vec::new();
        p.feed(chunk, |f| out.push((text(f.event), text(f.data), f.id.map(text))));
        out
    }

    #[test]
    fn split_frames_comments_and_multiline_data() {
        let mut p = SseParser::default();
        assert!(parse(&mut p, b"retry: 1500\n\n: heart").is_empty());
        assert_eq!(p.retry_ms, Some(1500));
        assert!(parse(&mut p, b"beat\n\nid: 3,4\ndata: {\"a\"").is_empty());
        let evs = parse(&mut p, b":1}\r\ndata:x\n\nevent: gap\ndata: {}\n\n");
        assert_eq!(
            evs,
            [
                ("message".into(), "{\"a\":1}\nx".into(), Some("3,4".into())),
                ("gap".into(), "{}".into(), None)
            ]
        );
    }

    #[test]
    fn what_the_spec_ignores_is_ignored() {
        let mut p = SseParser::default();
        // No data: nothing is dispatched, and the event type does not carry over.
        let evs = parse(&mut p, b"event: gap\nid: 7\n\ndata: a\n\n");
        assert_eq!(evs, [("message".into(), "a".into(), None)]);
        // An id with a NUL is ignored; a retry that is not all digits too; unknown fields too.
        let evs = parse(&mut p, b"retry: 12x\nid: a\0b\nfoo: bar\ndata\n\n");
        assert_eq!(evs, [("message".into(), "".into(), None)]);
        assert_eq!(p.retry_ms, None);
    }

    #[test]
    fn a_line_cut_anywhere_reads_the_same() {
        let stream = b"id: 1\ndata: {\"seq\":1}\n\nid: 2\ndata: {\"seq\":2}\n\n";
        let whole = parse(&mut SseParser::default(), stream);
        for cut in 1..stream.len() {
            let mut p = SseParser::default();
            let mut got = parse(&mut p, &stream[..cut]);
            got.extend(parse(&mut p, &stream[cut..]));
            assert_eq!(got, whole, "cut at {cut}");
        }
    }
}
