//! Every bound of `Limits`, crossed in each protocol, answers `TooLarge` naming it.

use thermostat_cloudwatch::{Error, Limit, Limits, cbor, json, query};

use crate::cbor_writer::{C, bytes};
use crate::protocols::{json as json_request, query_post};

fn limit_of(result: Result<thermostat_cloudwatch::Value, Error>) -> Limit {
    match result {
        Err(Error::TooLarge { limit, .. }) => limit,
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn deep_nesting() {
    let limits = Limits::default();
    let deep_json = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(
        limit_of(json::decode(deep_json.as_bytes(), &limits)),
        Limit::Depth
    );
    // Deeper than serde_json's own recursion limit (128): still our bound, first.
    let deeper = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(
        limit_of(json::decode(deeper.as_bytes(), &limits)),
        Limit::Depth
    );
    // A just-allowed depth decodes.
    let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
    assert!(json::decode(ok.as_bytes(), &limits).is_ok());

    let mut deep_cbor = vec![0x81; 10_000];
    deep_cbor.push(0x00);
    assert_eq!(limit_of(cbor::decode(&deep_cbor, &limits)), Limit::Depth);
    let mut deep_indef = vec![0x9f; 10_000];
    deep_indef.extend(vec![0xff; 10_000]);
    assert_eq!(limit_of(cbor::decode(&deep_indef, &limits)), Limit::Depth);

    let name = vec!["a"; 100].join(".");
    assert_eq!(
        limit_of(query::decode(format!("{name}=1").as_bytes(), &limits)),
        Limit::Depth
    );
}

#[test]
fn huge_member_indexes_and_long_lists() {
    let limits = Limits::default();
    let e = query::decode(b"MetricData.member.1000000000.MetricName=a", &limits);
    assert_eq!(limit_of(e), Limit::ListLen);
    let e = query::decode(
        b"MetricData.member.99999999999999999999999.MetricName=a",
        &limits,
    );
    assert!(matches!(e, Err(Error::Malformed(_))), "{e:?}");
    let long = (1..=1001)
        .map(|i| format!("Values.member.{i}=1"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        limit_of(query::decode(long.as_bytes(), &limits)),
        Limit::ListLen
    );
    let json_list = format!("[{}]", vec!["1"; 1001].join(","));
    assert_eq!(
        limit_of(json::decode(json_list.as_bytes(), &limits)),
        Limit::ListLen
    );
    // A CBOR header claiming 2^32 items allocates nothing: refused by length at once.
    assert_eq!(
        limit_of(cbor::decode(&[0x9a, 0xff, 0xff, 0xff, 0xff], &limits)),
        Limit::ListLen
    );
    assert_eq!(
        limit_of(cbor::decode(&[0xba, 0xff, 0xff, 0xff, 0xff], &limits)),
        Limit::ListLen
    );
    // An indefinite list of 1001 items.
    let items = bytes(&C::ArrayIndef((0..1001).map(C::Int).collect()));
    assert_eq!(limit_of(cbor::decode(&items, &limits)), Limit::ListLen);
    // Over the quota of the operation, under the decoder's bound: the CloudWatch message.
    let data: Vec<String> = (0..151).map(|i| i.to_string()).collect();
    let body = format!(
        r#"{{"Namespace":"N","MetricData":[{{"MetricName":"M","Values":[{}]}}]}}"#,
        data.join(",")
    );
    let e = json_request("PutMetricData", &body).unwrap_err().error;
    assert_eq!(
        e,
        Error::InvalidParameterValue(
            "The collection MetricData.member.1.Values must not have a size greater than 150."
                .into()
        )
    );
}

#[test]
fn ten_megabyte_strings_and_bodies() {
    let limits = Limits::default();
    let ten_mb = "a".repeat(10 * 1024 * 1024);
    let body = format!("{{\"Namespace\":\"{ten_mb}\"}}");
    assert_eq!(
        limit_of(json::decode(body.as_bytes(), &limits)),
        Limit::BodyBytes
    );
    let e = query_post(&format!(
        "Action=ListMetrics&Version=2010-08-01&Namespace={ten_mb}"
    ))
    .unwrap_err()
    .error;
    assert_eq!(
        e,
        Error::TooLarge {
            limit: Limit::BodyBytes,
            max: limits.max_body_bytes
        }
    );
    assert_eq!(e.status(), 413);
    assert_eq!(e.code(), "RequestEntityTooLarge");

    // Within the body bound, over the string bound.
    let big = Limits {
        max_body_bytes: 20 * 1024 * 1024,
        ..limits
    };
    assert_eq!(
        limit_of(json::decode(body.as_bytes(), &big)),
        Limit::StringBytes
    );
    let key = format!("{{\"{ten_mb}\":1}}");
    assert_eq!(
        limit_of(json::decode(key.as_bytes(), &big)),
        Limit::StringBytes
    );
    assert_eq!(
        limit_of(query::decode(
            format!("Namespace={ten_mb}").as_bytes(),
            &big
        )),
        Limit::StringBytes
    );
    let cbor_body = bytes(&C::Map(vec![("Namespace", C::OwnedText(ten_mb.clone()))]));
    assert_eq!(limit_of(cbor::decode(&cbor_body, &big)), Limit::StringBytes);
    // A text header claiming 4 GiB with 3 bytes behind it: refused before reading.
    assert_eq!(
        limit_of(cbor::decode(
            &[0x7a, 0xff, 0xff, 0xff, 0xff, b'a', b'b', b'c'],
            &big
        )),
        Limit::StringBytes
    );
}

#[test]
fn indefinite_cbor_is_bounded() {
    let limits = Limits {
        max_string_bytes: 100,
        ..Limits::default()
    };
    // An indefinite text of many short chunks, longer in total than the bound.
    let mut text = vec![0x7f];
    for _ in 0..60 {
        text.extend([0x62, b'a', b'b']);
    }
    text.push(0xff);
    assert_eq!(limit_of(cbor::decode(&text, &limits)), Limit::StringBytes);
    // The same within the bound decodes to the joined string.
    let mut short = vec![0x7f, 0x62, b'a', b'b', 0x61, b'c', 0xff];
    assert_eq!(
        cbor::decode(&short, &limits).unwrap(),
        thermostat_cloudwatch::Value::String("abc".into())
    );
    // Unterminated indefinite containers are malformed, not hangs.
    short.truncate(3);
    assert!(matches!(
        cbor::decode(&short, &limits),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        cbor::decode(&[0x9f, 0x01], &limits),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        cbor::decode(&[0xbf, 0x61, b'a'], &limits),
        Err(Error::Malformed(_))
    ));
    // Element count across many small items.
    let few = Limits {
        max_elements: 50,
        ..Limits::default()
    };
    let many = bytes(&C::ArrayIndef((0..60).map(C::Int).collect()));
    assert_eq!(limit_of(cbor::decode(&many, &few)), Limit::Elements);
}

#[test]
fn malformed_bodies() {
    let limits = Limits::default();
    for body in [&b"{"[..], b"{\"a\":1,\"a\":2}", b"[1] 2", b"nul"] {
        assert!(
            matches!(json::decode(body, &limits), Err(Error::Malformed(_))),
            "{body:?}"
        );
    }
    for body in [
        &[0xa1, 0x01, 0x01][..],                     // integer key
        &[0x41, 0x00],                               // byte string
        &[0xc2, 0x41, 0x00],                         // tag 2
        &[0xc1, 0x61, b'x'],                         // tag 1 holding text
        &[0xff],                                     // lone break
        &[0x01, 0x02],                               // trailing bytes
        &[0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02], // duplicate key
        &[0xc1, 0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0], // tag 1 infinity
    ] {
        assert!(
            matches!(cbor::decode(body, &limits), Err(Error::Malformed(_))),
            "{body:02x?}"
        );
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("writes to a Vec");
    encoder.finish().expect("writes to a Vec")
}

#[test]
fn gzip_bodies_on_every_protocol_and_gzip_bombs() {
    use thermostat_cloudwatch::{Protocol, RequestHead, decode};
    let limits = Limits::default();
    let form = b"Action=ListMetrics&Version=2010-08-01&Namespace=N";
    let cases: [(RequestHead<'_>, Vec<u8>); 3] = [
        (
            RequestHead {
                method: "POST",
                path: "/",
                content_type: Some("application/x-amz-json-1.0"),
                amz_target: Some("GraniteServiceVersion20100801.ListMetrics"),
                content_encoding: Some("gzip"),
                ..RequestHead::default()
            },
            gzip(br#"{"Namespace":"N"}"#),
        ),
        (
            RequestHead {
                method: "POST",
                path: "/service/GraniteServiceVersion20100801/operation/ListMetrics",
                content_type: Some("application/cbor"),
                smithy_protocol: Some("rpc-v2-cbor"),
                content_encoding: Some("GZIP"),
                ..RequestHead::default()
            },
            gzip(&bytes(&C::Map(vec![("Namespace", C::Text("N"))]))),
        ),
        (
            RequestHead {
                method: "POST",
                path: "/",
                content_type: Some("application/x-www-form-urlencoded"),
                content_encoding: Some("gzip"),
                ..RequestHead::default()
            },
            gzip(form),
        ),
    ];
    for (head, body) in &cases {
        let call = decode(head, body, &limits).unwrap();
        let thermostat_cloudwatch::Request::ListMetrics(list) = call.request else {
            panic!()
        };
        assert_eq!(list.namespace.as_deref(), Some("N"));
    }

    // 64 MB of zeros in about 64 KB: inflation stops just past the bound.
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < limits.max_body_bytes);
    let rejection = decode(&cases[0].0, &bomb, &limits).unwrap_err();
    assert_eq!(rejection.protocol, Protocol::AwsJson);
    assert_eq!(
        rejection.error,
        Error::TooLarge {
            limit: Limit::BodyBytes,
            max: limits.max_body_bytes
        }
    );
    // Not gzip at all, and an encoding Thermostat does not take.
    let e = decode(&cases[0].0, b"{}", &limits).unwrap_err().error;
    assert!(matches!(e, Error::Malformed(_)), "{e:?}");
    let br = RequestHead {
        content_encoding: Some("br"),
        ..cases[0].0
    };
    let e = decode(&br, b"{}", &limits).unwrap_err().error;
    assert_eq!((e.status(), e.code()), (415, "UnsupportedMediaType"));
}
