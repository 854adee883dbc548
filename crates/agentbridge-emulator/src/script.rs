//! Scripted behaviours, chosen by `emulate:NAME` or `emulate:NAME=ARG` tokens in the input
//! text (or in `sessionState.sessionAttributes.emulate`). Several may be combined.
//!
//! | token | behaviour |
//! |---|---|
//! | (none) | a reply echoing the input, with pre-processing, orchestration and post-processing traces carrying usage |
//! | `emulate:slow=MS` | waits MS milliseconds before each event |
//! | `emulate:return_control` / `emulate:return_control_api` | returns control for a function / an API operation |
//! | `emulate:citations` | the answer cites two knowledge-base references |
//! | `emulate:files` | the agent emits an output file |
//! | `emulate:guardrail` | a guardrail intervenes |
//! | `emulate:error=ThrottlingException` | an HTTP error before the stream (any API-model error name) |
//! | `emulate:exception=throttlingException` | an exception event after the first chunk |
//! | `emulate:stall` | sends the first chunk, then nothing, holding the connection |
//! | `emulate:corrupt` / `emulate:truncate` | a frame with a bad CRC / half a frame, after the first chunk |
//! | `emulate:big=N` | an answer of N bytes |
//! | `emulate:unicode` | a multi-byte answer whose chunks split characters |
//! | `emulate:model=ID` | the foundation model named in traces |
//! | `emulate:multistep` | a multi-step trace, sent as time passes: action group, knowledge base, collaborator agent, guardrail ([`crate::multistep`]) |
//!
//! An input containing "what did I say" is answered with the user's earlier turns, from
//! `sessionState.conversationHistory` and the session's memory.

/// What the input asks the emulator to do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    /// Delay before each event, in ms.
    pub slow_ms: u64,
    /// Return control: `Some(false)` function, `Some(true)` API.
    pub return_control: Option<bool>,
    /// Cite references.
    pub citations: bool,
    /// Emit a file.
    pub files: bool,
    /// Guardrail intervenes.
    pub guardrail: bool,
    /// HTTP error before the stream.
    pub http_error: Option<String>,
    /// Exception event after the first chunk.
    pub exception: Option<String>,
    /// Hang after the first chunk.
    pub stall: bool,
    /// Bad CRC after the first chunk.
    pub corrupt: bool,
    /// Half a frame after the first chunk, then close.
    pub truncate: bool,
    /// Answer size.
    pub big: Option<usize>,
    /// Multi-byte answer.
    pub unicode: bool,
    /// Foundation model in traces.
    pub model: Option<String>,
    /// Throttle the first N calls of the session.
    pub fail_first: Option<u32>,
    /// A multi-step trace (see [`crate::multistep`]).
    pub multistep: bool,
}

/// The largest `emulate:big` answer (64 MiB).
pub const MAX_BIG: usize = 64 << 20;

impl Script {
    /// Both scripts' behaviours (the first one's where only one can hold).
    pub fn merge(self, b: Script) -> Script {
        let a = self;
        Script {
            slow_ms: a.slow_ms.max(b.slow_ms),
            return_control: a.return_control.or(b.return_control),
            citations: a.citations || b.citations,
            files: a.files || b.files,
            guardrail: a.guardrail || b.guardrail,
            http_error: a.http_error.or(b.http_error),
            exception: a.exception.or(b.exception),
            stall: a.stall || b.stall,
            corrupt: a.corrupt || b.corrupt,
            truncate: a.truncate || b.truncate,
            big: a.big.or(b.big),
            unicode: a.unicode || b.unicode,
            model: a.model.or(b.model),
            fail_first: a.fail_first.or(b.fail_first),
            multistep: a.multistep || b.multistep,
        }
    }

    /// Reads the tokens in `text`.
    pub fn parse(text: &str) -> Self {
        let mut s = Self::default();
        for token in text.split_whitespace() {
            let Some(rest) = token.strip_prefix("emulate:") else {
                continue;
            };
            let rest = rest.trim_end_matches(['.', ',', ';', ')', ']', '"', '\'']);
            let (name, arg) = rest.split_once('=').unwrap_or((rest, ""));
            match name {
                "slow" => s.slow_ms = arg.parse().unwrap_or(200).min(60_000),
                "return_control" => s.return_control = Some(false),
                "return_control_api" => s.return_control = Some(true),
                "citations" => s.citations = true,
                "files" => s.files = true,
                "guardrail" => s.guardrail = true,
                "error" => {
                    s.http_error = Some(if arg.is_empty() {
                        "InternalServerException".into()
                    } else {
                        arg.into()
                    })
                }
                "exception" => {
                    s.exception = Some(if arg.is_empty() {
                        "internalServerException".into()
                    } else {
                        arg.into()
                    })
                }
                "stall" => s.stall = true,
                "corrupt" => s.corrupt = true,
                "truncate" => s.truncate = true,
                "big" => s.big = arg.parse::<usize>().ok().map(|n| n.min(MAX_BIG)),
                "unicode" => s.unicode = true,
                "model" if !arg.is_empty() => s.model = Some(arg.into()),
                "fail_first" => s.fail_first = arg.parse().ok(),
                "multistep" => s.multistep = true,
                _ => {}
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_combine_and_plain_text_is_default() {
        assert_eq!(Script::parse("hello there"), Script::default());
        let s = Script::parse(
            "Weather? emulate:return_control emulate:slow=50 emulate:exception=throttlingException.",
        );
        assert_eq!(s.return_control, Some(false));
        assert_eq!(s.slow_ms, 50);
        assert_eq!(s.exception.as_deref(), Some("throttlingException"));
        assert_eq!(Script::parse("emulate:big=999999999999").big, Some(MAX_BIG));
    }
}
