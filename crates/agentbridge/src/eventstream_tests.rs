use super::*;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue};

pub(crate) fn frame(event_type: &'static str, payload: &str) -> Vec<u8> {
    let msg = Message::new_from_parts(
        vec![
            Header::new(":message-type", HeaderValue::String("event".into())),
            Header::new(":event-type", HeaderValue::String(event_type.into())),
            Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ),
        ],
        payload.as_bytes().to_vec(),
    );
    let mut out = Vec::new();
    write_message_to(&msg, &mut out).unwrap();
    out
}

fn decode_all(pieces: &[&[u8]], max: usize) -> Result<Vec<Message>> {
    let mut d = FrameDecoder::new(max);
    let mut out = Vec::new();
    for p in pieces {
        d.push(p);
        while let Some(m) = d.next_message()? {
            out.push(m);
        }
    }
    d.finish()?;
    Ok(out)
}

fn stream() -> Vec<u8> {
    let mut s = frame("trace", r#"{"trace":{}}"#);
    s.extend(frame("chunk", r#"{"bytes":"SGVsbG8="}"#));
    s.extend(frame("chunk", r#"{"bytes":"IHdvcmxk"}"#));
    s
}

#[test]
fn multi_frame_stream_split_at_every_byte_boundary_yields_the_same_events() {
    let s = stream();
    let whole = decode_all(&[&s], DEFAULT_MAX_FRAME_BYTES).unwrap();
    assert_eq!(whole.len(), 3);
    for cut in 0..=s.len() {
        let got = decode_all(&[&s[..cut], &s[cut..]], DEFAULT_MAX_FRAME_BYTES).unwrap();
        assert_eq!(got, whole, "split at {cut}");
    }
    for a in 0..s.len() {
        for b in a..s.len() {
            let got = decode_all(&[&s[..a], &s[a..b], &s[b..]], DEFAULT_MAX_FRAME_BYTES).unwrap();
            assert_eq!(got, whole, "split at {a},{b}");
        }
    }
    let bytes: Vec<&[u8]> = s.chunks(1).collect();
    assert_eq!(decode_all(&bytes, DEFAULT_MAX_FRAME_BYTES).unwrap(), whole);
}

#[test]
fn prelude_crc_mismatch_is_a_decode_error() {
    let mut s = stream();
    s[9] ^= 0xff;
    assert!(
        matches!(decode_all(&[&s], DEFAULT_MAX_FRAME_BYTES), Err(Error::Decode(m)) if m.contains("prelude CRC"))
    );
}

#[test]
fn message_crc_mismatch_is_a_decode_error() {
    let mut s = frame("chunk", r#"{"bytes":"SGk="}"#);
    let last = s.len() - 1;
    s[last] ^= 0xff;
    assert!(matches!(
        decode_all(&[&s], DEFAULT_MAX_FRAME_BYTES),
        Err(Error::Decode(_))
    ));
}

#[test]
fn oversized_frame_is_refused_before_its_body_arrives() {
    // A prelude claiming 1 GiB with a valid CRC, and nothing else.
    let total: u32 = 1 << 30;
    let mut prelude = Vec::new();
    prelude.extend(total.to_be_bytes());
    prelude.extend(0u32.to_be_bytes());
    let crc = crc32fast::hash(&prelude);
    prelude.extend(crc.to_be_bytes());
    let mut d = FrameDecoder::new(16 * 1024 * 1024);
    d.push(&prelude);
    let err = d.next_message().unwrap_err();
    assert!(err.to_string().contains("exceeds"), "{err}");
    assert!(
        d.buf.capacity() < 1024,
        "no allocation for the claimed length"
    );
}

#[test]
fn frame_length_cap_is_configurable() {
    let s = frame("chunk", &format!(r#"{{"bytes":"{}"}}"#, "A".repeat(4000)));
    assert!(decode_all(&[&s], 1024).is_err());
    assert_eq!(decode_all(&[&s], 8192).unwrap().len(), 1);
}

#[test]
fn truncated_stream_is_a_decode_error() {
    let s = stream();
    for cut in [1, 11, 12, 20, s.len() - 1] {
        assert!(
            matches!(
                decode_all(&[&s[..cut]], DEFAULT_MAX_FRAME_BYTES),
                Err(Error::Decode(_))
            ),
            "cut {cut}"
        );
    }
}

#[test]
fn inconsistent_lengths_are_a_decode_error() {
    let mut prelude = Vec::new();
    prelude.extend(8u32.to_be_bytes());
    prelude.extend(0u32.to_be_bytes());
    let crc = crc32fast::hash(&prelude);
    prelude.extend(crc.to_be_bytes());
    prelude.extend([0u8; 4]);
    assert!(matches!(
        decode_all(&[&prelude], DEFAULT_MAX_FRAME_BYTES),
        Err(Error::Decode(_))
    ));
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_split_of_a_valid_stream_yields_the_same_messages(cuts in proptest::collection::vec(0usize..400, 0..12)) {
            let s = stream();
            let whole = decode_all(&[&s], DEFAULT_MAX_FRAME_BYTES).unwrap();
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (s.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut prev = 0;
            for p in points { pieces.push(&s[prev..p]); prev = p; }
            pieces.push(&s[prev..]);
            prop_assert_eq!(decode_all(&pieces, DEFAULT_MAX_FRAME_BYTES).unwrap(), whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_all(&[&data], 4096);
        }
    }
}
