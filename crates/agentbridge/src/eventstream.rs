//! Incremental decoding of `application/vnd.amazon.eventstream` bodies.
//!
//! Frames are parsed by `aws-smithy-eventstream`; this module adds what it lacks for a
//! gateway: the 12-byte prelude is read and its CRC and total length checked against a
//! configurable cap BEFORE any frame buffer grows, so a bogus length cannot allocate.

use crate::error::{Error, Result};
use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_types::event_stream::Message;
use bytes::BytesMut;

/// Prelude: total length (4), headers length (4), prelude CRC (4).
const PRELUDE: usize = 12;
/// Prelude plus the trailing message CRC.
const MIN_FRAME: usize = 16;
/// Default cap on one frame: admits the largest events AWS sends (payloads of ~24 MB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;

/// Reassembles frames from arbitrary pieces of the body.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_frame,
        }
    }

    /// Appends bytes read from the body.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `None` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>> {
        if self.buf.len() < PRELUDE {
            return Ok(None);
        }
        let total =
            u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        let headers =
            u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        let crc = u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
        if crc32fast::hash(&self.buf[..8]) != crc {
            return Err(Error::Decode("event-stream prelude CRC mismatch".into()));
        }
        if total < MIN_FRAME || headers > total - MIN_FRAME {
            return Err(Error::Decode(format!(
                "event-stream frame lengths are inconsistent (total {total}, headers {headers})"
            )));
        }
        if total > self.max_frame {
            return Err(Error::Decode(format!(
                "event-stream frame of {total} bytes exceeds the {} byte limit",
                self.max_frame
            )));
        }
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let frame = self.buf.split_to(total).freeze();
        let message = read_message_from(frame)
            .map_err(|e| Error::Decode(format!("event-stream frame: {e}")))?;
        Ok(Some(message))
    }

    /// Checks that the body ended on a frame boundary.
    pub fn finish(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Decode(format!(
                "the event stream ended inside a frame ({} bytes left over)",
                self.buf.len()
            )))
        }
    }
}

#[cfg(test)]
#[path = "eventstream_tests.rs"]
mod tests;
