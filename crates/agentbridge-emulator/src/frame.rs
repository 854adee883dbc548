//! Event-stream frames, written here from the format's definition (not with the smithy
//! crate the SDK decodes with), so decoding tests mean something.
//!
//! Frame: total length (u32 BE), headers length (u32 BE), CRC32 of those 8 bytes, headers,
//! payload, CRC32 of everything before it. Header: name length (u8), name, type (7 =
//! string), value length (u16 BE), value.

/// Encodes one frame with string headers.
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An `event` frame of type `event_type` with a JSON payload.
pub fn event(event_type: &str, payload: &serde_json::Value) -> Vec<u8> {
    encode(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// An `exception` frame (`exception_type` as in the API model: `throttlingException`, ...).
pub fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    encode(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        serde_json::json!({ "message": message })
            .to_string()
            .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout_and_crcs_follow_the_format() {
        let f = encode(&[(":message-type", "event")], b"{}");
        let total = u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize;
        assert_eq!(total, f.len());
        let hlen = u32::from_be_bytes([f[4], f[5], f[6], f[7]]) as usize;
        assert_eq!(hlen, 1 + 13 + 1 + 2 + 5);
        assert_eq!(
            u32::from_be_bytes([f[8], f[9], f[10], f[11]]),
            crc32fast::hash(&f[..8])
        );
        let n = f.len();
        assert_eq!(
            u32::from_be_bytes([f[n - 4], f[n - 3], f[n - 2], f[n - 1]]),
            crc32fast::hash(&f[..n - 4])
        );
    }
}
