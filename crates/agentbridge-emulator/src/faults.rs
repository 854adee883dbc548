//! Random fault injection for soak tests: a share of ordinary calls (in percent) is turned
//! into throttles, mid-stream exceptions, corrupted or truncated frames, or stalls.

use crate::script::Script;

/// Percentages of calls that get each fault.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// ThrottlingException before the stream.
    pub throttle: f64,
    /// internalServerException event after the first chunk.
    pub exception: f64,
    /// A frame with a bad CRC after the first chunk.
    pub corrupt: f64,
    /// Half a frame after the first chunk, then the end.
    pub truncate: f64,
    /// Nothing after the first chunk; the connection held open.
    pub stall: f64,
}

impl Faults {
    /// Parses `throttle=5,exception=1,corrupt=0.5,truncate=0.5,stall=1`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut f = Self::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("expected NAME=PERCENT, got {part:?}"))?;
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{k}: {v:?} is not a number"))?;
            match k.trim() {
                "throttle" => f.throttle = v,
                "exception" => f.exception = v,
                "corrupt" => f.corrupt = v,
                "truncate" => f.truncate = v,
                "stall" => f.stall = v,
                other => return Err(format!("unknown fault {other:?}")),
            }
        }
        if f.total() > 100.0 {
            return Err("fault percentages add up to more than 100".into());
        }
        Ok(f)
    }

    fn total(&self) -> f64 {
        self.throttle + self.exception + self.corrupt + self.truncate + self.stall
    }

    /// Adds the fault (if any) drawn for call number `n` to `script`.
    pub fn inject(&self, n: u64, script: &mut Script) {
        if self.total() <= 0.0 {
            return;
        }
        let roll = (splitmix(n) % 10_000) as f64 / 100.0;
        let mut edge = self.throttle;
        if roll < edge {
            script.http_error = Some("ThrottlingException".into());
            return;
        }
        edge += self.exception;
        if roll < edge {
            script.exception = Some("internalServerException".into());
            return;
        }
        edge += self.corrupt;
        if roll < edge {
            script.corrupt = true;
            return;
        }
        edge += self.truncate;
        if roll < edge {
            script.truncate = true;
            return;
        }
        if roll < edge + self.stall {
            script.stall = true;
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_close_to_the_asked_percentages() {
        let f = Faults::parse("throttle=5,exception=1,corrupt=0.5,truncate=0.5,stall=1").unwrap();
        let (mut throttles, mut stalls) = (0, 0);
        for n in 0..100_000 {
            let mut s = Script::default();
            f.inject(n, &mut s);
            throttles += s.http_error.is_some() as u32;
            stalls += s.stall as u32;
        }
        assert!((4_500..5_500).contains(&throttles), "{throttles}");
        assert!((800..1_200).contains(&stalls), "{stalls}");
        assert!(Faults::parse("throttle=90,stall=20").is_err());
        assert!(Faults::parse("nope=1").is_err());
    }
}
