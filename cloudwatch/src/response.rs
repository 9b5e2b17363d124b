//! Results and errors encoded in each protocol's shape, as a [`Response`] the HTTP adapter
//! copies onto the wire unchanged.

use std::convert::Infallible;

use ciborium_ll::{Encoder, Header};
use thermostat_metrics::Timestamp;

use crate::error::Error;
use crate::operation::Operation;
use crate::output::{Node, Output};
use crate::protocol::{Protocol, SHAPE_NAMESPACE, XML_NAMESPACE};

/// An HTTP response, complete but for `Content-Length`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn headers(protocol: Protocol, request_id: &str) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("x-amzn-RequestId", request_id.to_owned()),
        ("Content-Type", protocol.response_content_type().to_owned()),
    ];
    if protocol == Protocol::RpcV2Cbor {
        headers.push(("smithy-protocol", "rpc-v2-cbor".to_owned()));
    }
    headers
}

/// `output` as `protocol` answers it, status 200.
pub fn encode_output(protocol: Protocol, output: &Output, request_id: &str) -> Response {
    encode_node(
        protocol,
        output.operation(),
        output.to_node().as_ref(),
        request_id,
    )
}

/// A result tree of `operation` as `protocol` answers it, status 200; `None` for an
/// operation without output members.
pub fn encode_node(
    protocol: Protocol,
    operation: Operation,
    node: Option<&Node>,
    request_id: &str,
) -> Response {
    let empty = Node::Struct(Vec::new());
    let body = match protocol {
        Protocol::AwsJson => json_body(node.unwrap_or(&empty)),
        Protocol::RpcV2Cbor => cbor_body(node.unwrap_or(&empty)),
        Protocol::AwsQuery => {
            let name = operation.name();
            let mut xml = format!("<{name}Response xmlns=\"{XML_NAMESPACE}\">");
            if let Some(node) = node {
                xml.push_str(&format!("<{name}Result>"));
                write_xml(&mut xml, node);
                xml.push_str(&format!("</{name}Result>"));
            }
            xml.push_str("<ResponseMetadata><RequestId>");
            escape_into(&mut xml, request_id);
            xml.push_str(&format!("</RequestId></ResponseMetadata></{name}Response>"));
            xml.into_bytes()
        }
    };
    Response {
        status: 200,
        headers: headers(protocol, request_id),
        body,
    }
}

/// `error` as `protocol` answers it: CloudWatch's status, and JSON and CBOR errors carry
/// `x-amzn-query-error: <Code>;<Sender|Receiver>` so that SDKs raise the modelled exception.
pub fn encode_error(protocol: Protocol, error: &Error, request_id: &str) -> Response {
    let mut headers = headers(protocol, request_id);
    let message = error.to_string();
    let shape = format!("{SHAPE_NAMESPACE}#{}", error.shape());
    let fields = Node::Struct(vec![
        ("__type", Node::String(shape)),
        ("message", Node::String(message.clone())),
    ]);
    let body = match protocol {
        Protocol::AwsJson | Protocol::RpcV2Cbor => {
            headers.push((
                "x-amzn-query-error",
                format!("{};{}", error.code(), error.fault().as_str()),
            ));
            if protocol == Protocol::AwsJson {
                json_body(&fields)
            } else {
                cbor_body(&fields)
            }
        }
        Protocol::AwsQuery => {
            let mut xml = format!(
                "<ErrorResponse xmlns=\"{XML_NAMESPACE}\"><Error><Type>{}</Type><Code>{}</Code><Message>",
                error.fault().as_str(),
                error.code()
            );
            escape_into(&mut xml, &message);
            xml.push_str("</Message></Error><RequestId>");
            escape_into(&mut xml, request_id);
            xml.push_str("</RequestId></ErrorResponse>");
            xml.into_bytes()
        }
    };
    Response {
        status: error.status(),
        headers,
        body,
    }
}

// === JSON ===

/// Special doubles as AWS JSON writes them (strings), others as numbers.
fn json_float(f: f64) -> serde_json::Value {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "Infinity".into()
    } else if f == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        f.into()
    }
}

fn json_timestamp(t: Timestamp) -> serde_json::Value {
    let millis = t.as_millis();
    if millis % 1000 == 0 {
        (millis / 1000).into()
    } else {
        (millis as f64 / 1000.0).into()
    }
}

fn json_value(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match node {
        Node::Struct(members) => J::Object(
            members
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json_value(v)))
                .collect(),
        ),
        Node::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), json_value(v)))
                .collect(),
        ),
        Node::List(items) => J::Array(items.iter().map(json_value).collect()),
        Node::String(s) => J::String(s.clone()),
        Node::Int(i) => (*i).into(),
        Node::Float(f) => json_float(*f),
        Node::Bool(b) => J::Bool(*b),
        Node::Timestamp(t) => json_timestamp(*t),
    }
}

fn json_body(node: &Node) -> Vec<u8> {
    json_value(node).to_string().into_bytes()
}

// === CBOR ===

fn cbor_int(encoder: &mut Encoder<&mut Sink>, i: i64) -> Result<(), Infallible> {
    if i >= 0 {
        encoder.push(Header::Positive(i.unsigned_abs()))
    } else {
        encoder.push(Header::Negative(!i as u64))
    }
}

fn cbor_item(encoder: &mut Encoder<&mut Sink>, node: &Node) -> Result<(), Infallible> {
    match node {
        Node::Struct(members) => {
            encoder.push(Header::Map(Some(members.len())))?;
            for (key, value) in members {
                encoder.text(key, None)?;
                cbor_item(encoder, value)?;
            }
            Ok(())
        }
        Node::Map(entries) => {
            encoder.push(Header::Map(Some(entries.len())))?;
            for (key, value) in entries {
                encoder.text(key, None)?;
                cbor_item(encoder, value)?;
            }
            Ok(())
        }
        Node::List(items) => {
            encoder.push(Header::Array(Some(items.len())))?;
            items.iter().try_for_each(|item| cbor_item(encoder, item))
        }
        Node::String(s) => encoder.text(s, None),
        Node::Int(i) => cbor_int(encoder, *i),
        Node::Float(f) => encoder.push(Header::Float(*f)),
        Node::Bool(b) => encoder.push(Header::Simple(if *b { 21 } else { 20 })),
        Node::Timestamp(t) => {
            encoder.push(Header::Tag(1))?;
            let millis = t.as_millis();
            if millis % 1000 == 0 {
                cbor_int(encoder, millis / 1000)
            } else {
                encoder.push(Header::Float(millis as f64 / 1000.0))
            }
        }
    }
}

/// The CBOR encoder's output: a `Vec` behind an infallible writer, so that encoding cannot
/// fail whichever ciborium-io features the workspace's builds unify.
#[derive(Debug, Default)]
struct Sink(Vec<u8>);

impl ciborium_io::Write for &mut Sink {
    type Error = Infallible;

    fn write_all(&mut self, data: &[u8]) -> Result<(), Infallible> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

fn cbor_body(node: &Node) -> Vec<u8> {
    let mut sink = Sink::default();
    let mut encoder = Encoder::from(&mut sink);
    match cbor_item(&mut encoder, node) {
        Ok(()) => {}
        Err(never) => match never {},
    }
    sink.0
}

// === XML ===

/// `text` escaped for XML character data or attribute values. Characters XML 1.0 cannot
/// carry at all (most C0 controls, U+FFFE, U+FFFF) become U+FFFD; tab, line feed and
/// carriage return are written as references so that they survive.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

fn xml_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f == f64::INFINITY {
        "Infinity".to_owned()
    } else if f == f64::NEG_INFINITY {
        "-Infinity".to_owned()
    } else {
        f.to_string()
    }
}

/// ISO 8601 in UTC, with milliseconds only when there are some.
fn xml_timestamp(t: Timestamp) -> String {
    match jiff::Timestamp::from_millisecond(t.as_millis()) {
        Ok(ts) => ts.to_string(),
        Err(_) => t.as_millis().to_string(),
    }
}

fn element(out: &mut String, name: &str, node: &Node) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    write_xml(out, node);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn write_xml(out: &mut String, node: &Node) {
    match node {
        Node::Struct(members) => {
            for (name, value) in members {
                element(out, name, value);
            }
        }
        Node::List(items) => {
            for item in items {
                element(out, "member", item);
            }
        }
        Node::Map(entries) => {
            for (key, value) in entries {
                out.push_str("<entry><key>");
                escape_into(out, key);
                out.push_str("</key>");
                element(out, "value", value);
                out.push_str("</entry>");
            }
        }
        Node::String(s) => escape_into(out, s),
        Node::Int(i) => out.push_str(&i.to_string()),
        Node::Float(f) => out.push_str(&xml_float(*f)),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Timestamp(t) => out.push_str(&xml_timestamp(*t)),
    }
}
