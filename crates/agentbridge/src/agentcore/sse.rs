//! A server-sent events decoder (the `text/event-stream` answers of AgentCore agents): bytes
//! in as they arrive, each event's `data` out. Lines and events are capped (the deployment's
//! `max_event_bytes`) before anything is buffered without bound.

use crate::error::{Error, Result};

/// Decodes SSE bytes into the `data` of each event (`data:` lines joined by `\n`).
/// `event:`, `id:`, `retry:` and `:` comment lines are read and dropped.
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// Where the next line starts in `buf`.
    start: usize,
    /// Where the search for the next newline resumes.
    scan: usize,
    data: Vec<u8>,
    has_data: bool,
    max: usize,
}

impl SseDecoder {
    /// A decoder refusing lines and events longer than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            scan: 0,
            data: Vec::new(),
            has_data: false,
            max: max_event_bytes,
        }
    }

    /// Adds bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.scan = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event's data, `None` until more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<String>> {
        loop {
            let Some(nl) = memchr::memchr(b'\n', &self.buf[self.scan..]) else {
                self.scan = self.buf.len();
                if self.buf.len() - self.start > self.max {
                    return Err(too_long(self.max));
                }
                if self.start > 0 && self.start * 2 > self.buf.len() {
                    self.buf.drain(..self.start);
                    self.scan -= self.start;
                    self.start = 0;
                }
                return Ok(None);
            };
            let end = self.scan + nl;
            let mut line_end = end;
            if line_end > self.start && self.buf[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            let (from, to) = (self.start, line_end);
            self.start = end + 1;
            self.scan = self.start;
            if from == to {
                if let Some(event) = self.dispatch()? {
                    return Ok(Some(event));
                }
                continue;
            }
            self.line(from, to)?;
        }
    }

    /// The end of the body: an event left without its closing blank line still counts.
    pub fn finish(&mut self) -> Result<Option<String>> {
        if self.start < self.buf.len() {
            let (from, mut to) = (self.start, self.buf.len());
            if self.buf[to - 1] == b'\r' {
                to -= 1;
            }
            self.start = self.buf.len();
            if from < to {
                self.line(from, to)?;
            }
        }
        self.dispatch()
    }

    fn line(&mut self, from: usize, to: usize) -> Result<()> {
        let line = &self.buf[from..to];
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
            if self.data.len() > self.max {
                return Err(too_long(self.max));
            }
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Result<Option<String>> {
        if !self.has_data {
            return Ok(None);
        }
        self.has_data = false;
        let data = std::mem::take(&mut self.data);
        String::from_utf8(data)
            .map(Some)
            .map_err(|_| Error::Decode("an SSE event from the agent is not UTF-8".into()))
    }
}

fn too_long(max: usize) -> Error {
    Error::Decode(format!(
        "an SSE event from the agent exceeds max_event_bytes ({max} bytes)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(wire: &[u8], size: usize) -> Vec<String> {
        let mut d = SseDecoder::new(1024);
        let mut out = Vec::new();
        for chunk in wire.chunks(size) {
            d.push(chunk);
            while let Some(e) = d.next_event().unwrap() {
                out.push(e);
            }
        }
        out.extend(d.finish().unwrap());
        out
    }

    #[test]
    fn events_come_out_alike_whatever_the_chunking() {
        let wire = b": comment\ndata: \"Hello\"\n\nevent: x\r\ndata: {\"a\": 1}\r\n\r\ndata: one\ndata:two\n\ndata: tail";
        for size in 1..wire.len() {
            assert_eq!(
                decode_in_pieces(wire, size),
                ["\"Hello\"", "{\"a\": 1}", "one\ntwo", "tail"],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing() {
        assert_eq!(
            decode_in_pieces(b"\n\n: ping\n\nid: 3\n\n", 4),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_overlong_line_or_event_is_an_error_before_it_is_buffered() {
        let mut d = SseDecoder::new(16);
        d.push(&[b'x'; 17]);
        assert!(d.next_event().is_err());
        let mut d = SseDecoder::new(16);
        d.push(b"data: 0123456789\ndata: 0123456789\n");
        assert!(d.next_event().is_err());
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut d = SseDecoder::new(64);
        d.push(b"data: \xff\xfe\n\n");
        assert!(d.next_event().is_err());
    }
}
