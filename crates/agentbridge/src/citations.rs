//! Knowledge-base citations (`attribution.citations`) -> OpenAI `url_citation` annotations.
//!
//! Each retrieved reference of a citation gives one annotation: its location (S3 URI, web
//! URL, Confluence/SharePoint/Salesforce URL, Kendra URI, custom document id) and the span of
//! the generated text it supports (`generatedResponsePart.textResponsePart.span`, character
//! offsets in the answer, end exclusive).

use crate::openai::{Annotation, UrlCitation};
use serde_json::Value;

/// The location of a retrieved reference as a URI, and a title for it.
pub fn location(reference: &Value) -> Option<(String, String)> {
    let loc = reference.get("location")?;
    let (ptr, title) = [
        ("/s3Location/uri", "s3"),
        ("/webLocation/url", "web"),
        ("/confluenceLocation/url", "confluence"),
        ("/sharePointLocation/url", "sharepoint"),
        ("/salesforceLocation/url", "salesforce"),
        ("/kendraDocumentLocation/uri", "kendra"),
        ("/customDocumentLocation/id", "custom"),
        ("/sqlLocation/query", "sql"),
    ]
    .into_iter()
    .find(|(p, _)| loc.pointer(p).and_then(Value::as_str).is_some())?;
    let uri = loc.pointer(ptr).and_then(Value::as_str)?.to_string();
    let name = uri
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or(title)
        .to_string();
    Some((uri, name))
}

/// Annotations for a list of AWS citations.
pub fn annotations(citations: &[Value]) -> Vec<Annotation> {
    let mut out = Vec::new();
    for c in citations {
        let span = c.pointer("/generatedResponsePart/textResponsePart/span");
        let idx = |k: &str| {
            span.and_then(|s| s.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize
        };
        let (start, end) = (idx("start"), idx("end"));
        for r in c
            .get("retrievedReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some((url, title)) = location(r) {
                out.push(Annotation {
                    kind: "url_citation".into(),
                    url_citation: UrlCitation {
                        url,
                        title,
                        start_index: start,
                        end_index: end.max(start),
                    },
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_reference_becomes_an_annotation_with_its_uri_and_span() {
        let c = json!([{
            "generatedResponsePart": {"textResponsePart": {"text": "Q3 grew", "span": {"start": 4, "end": 11}}},
            "retrievedReferences": [
                {"content": {"text": "..."}, "location": {"type": "S3", "s3Location": {"uri": "s3://kb-docs/q3/report.pdf"}}},
                {"location": {"type": "WEB", "webLocation": {"url": "https://example.com/q3"}}},
                {"location": {"type": "UNKNOWN"}}
            ]
        }]);
        let a = annotations(c.as_array().unwrap());
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].url_citation.url, "s3://kb-docs/q3/report.pdf");
        assert_eq!(a[0].url_citation.title, "report.pdf");
        assert_eq!(
            (a[0].url_citation.start_index, a[0].url_citation.end_index),
            (4, 11)
        );
        assert_eq!(a[1].url_citation.url, "https://example.com/q3");
        assert_eq!(a[1].kind, "url_citation");
    }
}
