//! [`Path`]: where a field sits in the body, shown as `a.b[1].c` in details and `a['b'][1]['c']` in Graph messages.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Key(&'static str),
    Index(usize),
}

/// The location of a field: shown as `a.b[1].c` in details and as `a['b'][1]['c']` in Graph messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Path(Vec<Segment>);

impl Path {
    pub(super) fn root(key: &'static str) -> Self {
        Path(vec![Segment::Key(key)])
    }

    pub(super) fn key(&self, key: &'static str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key));
        Path(segments)
    }

    pub(super) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Path(segments)
    }

    pub(super) fn is_top_level(&self) -> bool {
        self.0.len() == 1
    }

    pub(super) fn last_key(&self) -> &'static str {
        match self.0.last() {
            Some(Segment::Key(key)) => key,
            _ => "",
        }
    }

    pub(super) fn dotted(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Key(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Segment::Index(index) => {
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    pub(super) fn graph(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Key(key) if out.is_empty() => out.push_str(key),
                Segment::Key(key) => {
                    out.push_str("['");
                    out.push_str(key);
                    out.push_str("']");
                }
                Segment::Index(index) => {
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.dotted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_in_both_styles() {
        let path = Path::root("interactive").key("action").key("buttons").index(1).key("reply").key("title");
        assert_eq!(path.dotted(), "interactive.action.buttons[1].reply.title");
        assert_eq!(path.graph(), "interactive['action']['buttons'][1]['reply']['title']");
        assert_eq!(path.to_string(), path.dotted());
        assert!(Path::root("to").is_top_level());
        assert_eq!(Path::root("a").index(0).last_key(), "");
    }
}
