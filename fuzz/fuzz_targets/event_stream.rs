//! Decoder + response builder: arbitrary bytes, fed in pieces, through the frame decoder, the
//! event decoder and the answer state. CRCs are fixed up for half the inputs so the fuzzer
//! reaches the header and payload parsers behind the checksums.
#![no_main]

use agentbridge::answer::AnswerState;
use agentbridge::events;
use agentbridge::eventstream::FrameDecoder;
use agentbridge::request::AnswerOptions;
use libfuzzer_sys::fuzz_target;

fn fix_crcs(data: &mut [u8]) {
    let mut at = 0;
    while data.len() - at >= 16 {
        let rest = data.len() - at;
        let claimed = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let total = claimed.clamp(16, rest);
        data[at..at + 4].copy_from_slice(&(total as u32).to_be_bytes());
        let headers = u32::from_be_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]) as usize;
        let headers = headers.min(total - 16);
        data[at + 4..at + 8].copy_from_slice(&(headers as u32).to_be_bytes());
        let prelude = crc32(&data[at..at + 8]);
        data[at + 8..at + 12].copy_from_slice(&prelude.to_be_bytes());
        let msg = crc32(&data[at..at + total - 4]);
        data[at + total - 4..at + total].copy_from_slice(&msg.to_be_bytes());
        at += total;
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= *b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fuzz_target!(|input: &[u8]| {
    let Some((&ctl, rest)) = input.split_first() else { return };
    let mut data = rest.to_vec();
    if ctl & 0x80 != 0 {
        fix_crcs(&mut data);
    }
    let piece = (ctl & 0x3f) as usize + 1;
    let options = AnswerOptions { stream: ctl & 0x40 != 0, include_usage: true, include_trace: true };
    let mut state = AnswerState::new("fuzz".into(), options, None);
    let mut decoder = FrameDecoder::new(1 << 20);
    for chunk in data.chunks(piece) {
        decoder.push(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(msg)) => match events::decode(&msg) {
                    Ok(Some(ev)) => {
                        if state.accept(ev).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(_) => return,
                },
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.finish();
    let _ = state.end();
    let _ = state.outcome();
});
