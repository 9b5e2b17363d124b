//! A configuration file parsed once into a tree with positions ([`Document`]), and the
//! positioned values read from it ([`Node`], [`Spanned`], [`Text`], [`Pairs`]).

use std::fmt;

use marked_yaml::LoaderOptions;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

pub use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
pub use marked_yaml::{Node, Span, Spanned};

use crate::error::Pos;
use crate::text::{TextError, TextErrorKind, check_text};

/// A scalar as written, with its position.
pub type Text = Spanned<String>;

/// A list of scalars (e.g. action ARNs).
pub type TextList = Spanned<Vec<Text>>;

/// An ordered YAML map of scalars (e.g. `dimensions`), keeping every key's position.
#[derive(Debug, Default)]
pub struct Pairs(pub Vec<(Text, Text)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Text, Text>()? {
                    out.push((k, v));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(PairsVisitor)
    }
}

/// The position of a span's start (0:0 when unknown).
pub fn pos_of(span: &Span) -> Pos {
    span.start()
        .map(|m| {
            Pos::new(
                u32::try_from(m.line()).unwrap_or(u32::MAX),
                u32::try_from(m.column()).unwrap_or(u32::MAX),
            )
        })
        .unwrap_or_default()
}

/// The position of a spanned value.
pub fn pos<T>(s: &Spanned<T>) -> Pos {
    pos_of(s.span())
}

/// Whether a scalar is YAML's null (`~`, `null`), as written.
pub fn is_null(t: &Text) -> bool {
    matches!(t.as_str(), "~" | "null" | "Null" | "NULL") && t.span().start().is_some()
}

/// A list entry that was read, with its place in the list.
#[derive(Debug)]
pub struct Entry<T> {
    /// 0-based index in its list.
    pub index: usize,
    /// Position of the entry.
    pub pos: Pos,
    /// The entry.
    pub spec: T,
}

/// Parses a YAML text into a node tree with positions, after [`check_text`]: a map at the
/// top level, no anchors, aliases or tags, map keys that are plain scalars and appear once.
///
/// # Errors
/// The first problem, with its position.
pub fn parse_yaml(text: &str) -> Result<Node, TextError> {
    check_text(text)?;
    let opts = LoaderOptions::default().error_on_duplicate_keys(true);
    marked_yaml::parse_yaml_with_options(0, text, opts).map_err(|e| load_error(&e))
}

fn load_error(e: &marked_yaml::LoadError) -> TextError {
    use marked_yaml::LoadError as L;
    let at = |m: &marked_yaml::Marker| {
        Pos::new(
            u32::try_from(m.line()).unwrap_or(u32::MAX),
            u32::try_from(m.column()).unwrap_or(u32::MAX),
        )
    };
    let syntax = |pos: Pos, message: String| TextError {
        pos,
        message,
        kind: TextErrorKind::Syntax,
    };
    match e {
        L::TopLevelMustBeMapping(m) | L::TopLevelMustBeSequence(m) => TextError {
            pos: at(m),
            message: "must be a map of keys and values".into(),
            kind: TextErrorKind::TopLevelNotMap,
        },
        L::UnexpectedAnchor(m) => {
            syntax(at(m), "YAML anchors and aliases are not supported".into())
        }
        L::MappingKeyMustBeScalar(m) => syntax(at(m), "map keys must be plain scalars".into()),
        L::UnexpectedTag(m) => syntax(at(m), "YAML tags (!!type) are not supported".into()),
        L::ScanError(m, s) => syntax(at(m), format!("invalid YAML: {}", s.info())),
        L::DuplicateKey(d) => syntax(
            pos_of(d.key.span()),
            format!(
                "duplicate key {:?} (first at line {})",
                d.key.as_str(),
                pos_of(d.prev_key.span()).line
            ),
        ),
    }
}

/// One configuration file, parsed once: every reader of the configuration (each section,
/// each cross-check) reads the same tree. A tree takes many times the text's size in
/// memory, so a loader reads a file with every reader before it parses the next.
#[derive(Debug)]
pub struct Document {
    file: String,
    parsed: Result<Option<Node>, TextError>,
}

impl Document {
    /// Parses `text`, the contents of `file` ([`parse_yaml`]). A text of white space only is
    /// an empty document, neither checked nor parsed.
    pub fn parse(file: impl Into<String>, text: &str) -> Document {
        let parsed = if text.trim().is_empty() {
            Ok(None)
        } else {
            parse_yaml(text).map(Some)
        };
        Document {
            file: file.into(),
            parsed,
        }
    }

    /// The file name, as given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The tree; `None` for an empty document or a refused text.
    pub fn root(&self) -> Option<&Node> {
        self.parsed.as_ref().ok().and_then(Option::as_ref)
    }

    /// Why the text was refused, if it was.
    pub fn error(&self) -> Option<&TextError> {
        self.parsed.as_ref().err()
    }

    /// The value of the top-level key `key`, when the document is a map that has it.
    pub fn section(&self, key: &str) -> Option<&Node> {
        self.root()?.as_mapping()?.get_node(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns_in_characters() {
        let d = Document::parse("a.yaml", "top:\n  été: 1\n  list: [x, \"y\"]\n");
        let top = d.section("top").and_then(Node::as_mapping).unwrap();
        let (key, value) = top.iter().next().unwrap();
        assert_eq!(pos_of(key.span()), Pos::new(2, 3));
        assert_eq!(pos_of(value.span()), Pos::new(2, 8));
        let list = top.get_sequence("list").unwrap();
        assert_eq!(pos_of(list[1].span()), Pos::new(3, 13));
        assert_eq!(d.file(), "a.yaml");
        assert!(d.error().is_none());
    }

    #[test]
    fn blank_texts_are_empty_documents_and_refused_ones_keep_their_error() {
        let blank = Document::parse("b.yaml", "  \n\n");
        assert!(blank.root().is_none() && blank.error().is_none());
        let comments = Document::parse("c.yaml", "# nothing\n");
        assert!(comments.root().is_some_and(|r| r.as_mapping().is_some()));
        let bad = Document::parse("d.yaml", "a: 1\na: 2\n");
        let e = bad.error().unwrap();
        assert_eq!(e.pos, Pos::new(2, 1));
        assert_eq!(e.message, "duplicate key \"a\" (first at line 1)");
        assert!(bad.root().is_none() && bad.section("a").is_none());
    }

    #[test]
    fn a_document_that_is_not_a_map_says_so() {
        for text in ["- a\n- b\n", "just text\n"] {
            let e = parse_yaml(text).unwrap_err();
            assert_eq!(e.kind, TextErrorKind::TopLevelNotMap, "{text}");
            assert_eq!(e.pos, Pos::new(1, 1));
        }
        for (text, message) in [
            (
                "a: &x 1\nb: *x\n",
                "YAML anchors and aliases are not supported",
            ),
            ("a: !!str 1\n", "YAML tags (!!type) are not supported"),
            ("? [a]\n: 1\n", "map keys must be plain scalars"),
        ] {
            let e = parse_yaml(text).unwrap_err();
            assert_eq!(
                (e.kind, e.message.as_str()),
                (TextErrorKind::Syntax, message)
            );
        }
    }

    #[test]
    fn the_text_bounds_are_checked_before_parsing() {
        let e = Document::parse("n.yaml", "a: 1\n# \0\n");
        assert_eq!(e.error().map(|e| e.kind), Some(TextErrorKind::Character));
        assert_eq!(e.error().map(|e| e.pos), Some(Pos::new(2, 3)));
    }

    #[test]
    fn nulls_are_recognised_as_written() {
        let d = Document::parse("n.yaml", "a: ~\nb: null\nc: nil\n");
        let map = d.root().and_then(Node::as_mapping).unwrap();
        let text = |k: &str| -> Text { marked_yaml::from_node(map.get_node(k).unwrap()).unwrap() };
        assert!(is_null(&text("a")));
        assert!(is_null(&text("b")));
        assert!(!is_null(&text("c")));
    }

    #[test]
    fn pairs_keep_their_order_and_positions() {
        let d = Document::parse("p.yaml", "dims: {B: 1, A: 2}\n");
        let pairs: Spanned<Pairs> = marked_yaml::from_node(d.section("dims").unwrap()).unwrap();
        let keys: Vec<&str> = pairs.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["B", "A"]);
        assert_eq!(pos(&pairs.0[1].0), Pos::new(1, 14));
    }
}
