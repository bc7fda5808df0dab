//! Media messages (image, video, audio, document, sticker): a link or an uploaded id, with a caption or
//! filename where the type allows one.

use serde::Serialize;

use super::GraphContent;
use super::error::GraphError;
use super::json::{Obj, check_len, check_not_empty, opt_str, req_obj};
use super::path::Path;
use crate::simulator::url::is_http_url;

/// Media `<MEDIA_CAPTION_TEXT>`: "Maximum 1024 characters" (image, video and document pages).
pub const MEDIA_CAPTION_MAX: usize = 1024;

/// The media message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    /// The `type` value (and the name of the media object) in a send.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }

    /// Whether the Cloud API accepts a `caption` for this media type (image, video and document only).
    pub fn allows_caption(self) -> bool {
        matches!(self, MediaKind::Image | MediaKind::Video | MediaKind::Document)
    }

    /// Whether the Cloud API accepts a `filename` for this media type (document only).
    pub fn allows_filename(self) -> bool {
        matches!(self, MediaKind::Document)
    }
}

pub(super) fn validate_media(root: &Obj, kind: MediaKind) -> Result<GraphContent, GraphError> {
    let path = Path::root(kind.as_str());
    let media = req_obj(root, &path)?;

    let link_path = path.key("link");
    let id_path = path.key("id");
    let link = opt_str(media, &link_path)?;
    let id = opt_str(media, &id_path)?;
    match (link, id) {
        (Some(_), Some(_)) => {
            return Err(GraphError::invalid_value(format!(
                "{path} must contain exactly one of {link_path} or {id_path} (got both)"
            )));
        }
        (None, None) => {
            return Err(GraphError::conditionally_missing(format!("{link_path} or {id_path} is required")));
        }
        (Some(link), None) if !is_http_url(link) => {
            return Err(GraphError::invalid_value(format!(
                "{link_path} must be an http:// or https:// URL with a host (got {link:?})"
            )));
        }
        (None, Some(id)) => check_not_empty(&id_path, id)?,
        (Some(_), None) => {}
    }

    let caption_path = path.key("caption");
    let caption = opt_str(media, &caption_path)?;
    if let Some(caption) = caption {
        if !kind.allows_caption() {
            return Err(GraphError::invalid_value(format!(
                "{caption_path} is not allowed: {} messages cannot have a caption",
                kind.as_str()
            )));
        }
        check_len(&caption_path, caption, 0, MEDIA_CAPTION_MAX)?;
    }

    let filename_path = path.key("filename");
    let filename = opt_str(media, &filename_path)?;
    if filename.is_some() && !kind.allows_filename() {
        return Err(GraphError::invalid_value(format!(
            "{filename_path} is not allowed: only document messages have a filename"
        )));
    }

    Ok(GraphContent::Media {
        kind,
        link: link.map(str::to_string),
        id: id.map(str::to_string),
        caption: caption.map(str::to_string),
        filename: filename.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::simulator::graph_rules::test_support::*;

    #[test]
    fn media_of_each_kind_is_parsed() {
        let kinds = [MediaKind::Image, MediaKind::Video, MediaKind::Audio, MediaKind::Document, MediaKind::Sticker];
        for kind in kinds {
            let by_link = send(kind.as_str(), json!({ "link": "https://cdn.example.com/a.bin" }));
            assert_eq!(
                ok(&by_link).content,
                GraphContent::Media {
                    kind,
                    link: Some("https://cdn.example.com/a.bin".into()),
                    id: None,
                    caption: None,
                    filename: None,
                }
            );
            let by_id = send(kind.as_str(), json!({ "id": "1013859600285441" }));
            assert!(matches!(ok(&by_id).content, GraphContent::Media { id: Some(_), link: None, .. }));
        }
        let document = send(
            "document",
            json!({ "link": "http://example.com:8080/f.pdf?x=1", "caption": "Invoice", "filename": "f.pdf" }),
        );
        assert_eq!(
            ok(&document).content,
            GraphContent::Media {
                kind: MediaKind::Document,
                link: Some("http://example.com:8080/f.pdf?x=1".into()),
                id: None,
                caption: Some("Invoice".into()),
                filename: Some("f.pdf".into()),
            }
        );
        for kind in ["image", "video"] {
            ok(&send(kind, json!({ "id": "1", "caption": "c" })));
        }
    }

    #[test]
    fn media_kind_strings() {
        let names: Vec<&str> =
            [MediaKind::Image, MediaKind::Video, MediaKind::Audio, MediaKind::Document, MediaKind::Sticker]
                .into_iter()
                .map(MediaKind::as_str)
                .collect();
        assert_eq!(names, ["image", "video", "audio", "document", "sticker"]);
    }

    #[test]
    fn media_source_rules() {
        for kind in ["image", "video", "audio", "document", "sticker"] {
            expect(
                &send(kind, json!({ "link": "https://e.com/a", "id": "1" })),
                VALUE,
                &format!("{kind} must contain exactly one of {kind}.link or {kind}.id (got both)"),
            );
            let error = expect(&send(kind, json!({})), MISSING, &format!("{kind}.link or {kind}.id is required"));
            assert_eq!(error.message, "(#131008) Required parameter is missing");
            expect(&send(kind, json!({ "id": "" })), VALUE, &format!("{kind}.id must not be empty"));
            expect(&send(kind, json!({ "id": 42 })), INVALID, &format!("{kind}.id must be a string (got a number)"));
            expect(
                &send(kind, json!("https://e.com/a")),
                INVALID,
                &format!("{kind} must be a JSON object (got a string)"),
            );
        }
        let good_links = [
            "https://e.com/a.png",
            "HTTPS://E.COM",
            "http://localhost:8080/x",
            "http://127.0.0.1/x",
            "https://user:pw@e.com/x",
            "https://[::1]:443/x",
            "https://my_bucket.s3.example.com/a",
        ];
        for link in good_links {
            ok(&send("image", json!({ "link": link })));
        }
        let bad_links = [
            "",
            "e.com/a.png",
            "ftp://e.com/a",
            "https://",
            "https:///a.png",
            "https://?x",
            "https://e.com:port/a",
            "https://e.com:99999/a",
            "https://e .com/a",
            "https://e.com/a b",
            "https://[zz]/a",
            "https://[::1/a",
            "//e.com/a",
            "https://é.com/a",
        ];
        for link in bad_links {
            let error = expect(
                &send("image", json!({ "link": link })),
                VALUE,
                "image.link must be an http:// or https:// URL with a host",
            );
            assert!(error.details.contains(&format!("{link:?}")), "{error:?}");
        }
    }

    #[test]
    fn media_caption_and_filename_rules() {
        for kind in ["image", "video", "document"] {
            for ch in ['c', '😀'] {
                ok(&send(kind, json!({ "id": "1", "caption": s(ch, MEDIA_CAPTION_MAX) })));
                expect(
                    &send(kind, json!({ "id": "1", "caption": s(ch, MEDIA_CAPTION_MAX + 1) })),
                    VALUE,
                    &format!("{kind}.caption must be at most 1024 characters (got 1025)"),
                );
            }
            expect(
                &send(kind, json!({ "id": "1", "caption": 1 })),
                INVALID,
                &format!("{kind}.caption must be a string"),
            );
        }
        for kind in ["audio", "sticker"] {
            expect(
                &send(kind, json!({ "id": "1", "caption": "c" })),
                VALUE,
                &format!("{kind}.caption is not allowed: {kind} messages cannot have a caption"),
            );
        }
        for kind in ["image", "video", "audio", "sticker"] {
            expect(
                &send(kind, json!({ "id": "1", "filename": "a.bin" })),
                VALUE,
                &format!("{kind}.filename is not allowed: only document messages have a filename"),
            );
        }
        expect(
            &send("document", json!({ "id": "1", "filename": ["a"] })),
            INVALID,
            "document.filename must be a string",
        );
    }
}
