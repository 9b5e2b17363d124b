//! Results and errors in each protocol's shape.

use std::collections::BTreeMap;

use thermostat_cloudwatch::output::{
    Datapoint, GetMetricDataOutput, GetMetricStatisticsOutput, MetricDataResult, StatusCode,
};
use thermostat_cloudwatch::{
    Error, Limits, Output, Protocol, RequestHead, Value, cbor, encode_error, encode_output,
};
use thermostat_metrics::{Timestamp, Unit};

fn statistics() -> Output {
    Output::GetMetricStatistics(GetMetricStatisticsOutput {
        label: "Latency".into(),
        datapoints: vec![Datapoint {
            timestamp: Timestamp::from_secs(1_765_065_600),
            average: Some(1.5),
            maximum: Some(3.0),
            unit: Some(Unit::Milliseconds),
            extended_statistics: BTreeMap::from([("p99".to_owned(), 2.75)]),
            ..Datapoint::default()
        }],
    })
}

#[test]
fn json_result() {
    let r = encode_output(Protocol::AwsJson, &statistics(), "req-1");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amzn-RequestId"), Some("req-1"));
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.0"));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"Label": "Latency", "Datapoints": [{
            "Timestamp": 1_765_065_600, "Average": 1.5, "Maximum": 3.0,
            "Unit": "Milliseconds", "ExtendedStatistics": {"p99": 2.75}}]})
    );
    let put = encode_output(Protocol::AwsJson, &Output::PutMetricData, "req-2");
    assert_eq!(put.body, b"{}");
}

#[test]
fn cbor_result_decodes_back_and_carries_smithy_protocol() {
    let r = encode_output(Protocol::RpcV2Cbor, &statistics(), "req-1");
    assert_eq!(r.header("smithy-protocol"), Some("rpc-v2-cbor"));
    assert_eq!(r.header("Content-Type"), Some("application/cbor"));
    let Value::Map(top) = cbor::decode(&r.body, &Limits::default()).unwrap() else {
        panic!()
    };
    assert_eq!(top["Label"], Value::String("Latency".into()));
    let Value::List(points) = &top["Datapoints"] else {
        panic!()
    };
    let Value::Map(point) = &points[0] else {
        panic!()
    };
    assert_eq!(
        point["Timestamp"],
        Value::Timestamp(Timestamp::from_secs(1_765_065_600))
    );
    assert_eq!(point["Average"], Value::Float(1.5));
}

#[test]
fn query_result_xml() {
    let r = encode_output(Protocol::AwsQuery, &statistics(), "req-1");
    assert_eq!(r.header("Content-Type"), Some("text/xml"));
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        "<GetMetricStatisticsResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">\
         <GetMetricStatisticsResult><Label>Latency</Label><Datapoints><member>\
         <Timestamp>2025-12-07T00:00:00Z</Timestamp><Average>1.5</Average><Maximum>3</Maximum>\
         <Unit>Milliseconds</Unit><ExtendedStatistics><entry><key>p99</key><value>2.75</value>\
         </entry></ExtendedStatistics></member></Datapoints></GetMetricStatisticsResult>\
         <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>\
         </GetMetricStatisticsResponse>"
    );
    let put = encode_output(Protocol::AwsQuery, &Output::PutMetricData, "r");
    assert_eq!(
        String::from_utf8(put.body).unwrap(),
        "<PutMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">\
         <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PutMetricDataResponse>"
    );
}

#[test]
fn metric_data_result_timestamps_and_special_values() {
    let out = Output::GetMetricData(GetMetricDataOutput {
        metric_data_results: vec![MetricDataResult {
            id: "m1".into(),
            label: "<&>".into(),
            timestamps: vec![Timestamp::from_millis(1500)],
            values: vec![f64::NAN],
            status_code: StatusCode::Complete,
            messages: vec![],
        }],
        next_token: None,
        messages: vec![],
    });
    let json: serde_json::Value =
        serde_json::from_slice(&encode_output(Protocol::AwsJson, &out, "r").body).unwrap();
    assert_eq!(json["MetricDataResults"][0]["Timestamps"][0], 1.5);
    assert_eq!(json["MetricDataResults"][0]["Values"][0], "NaN");
    let xml = String::from_utf8(encode_output(Protocol::AwsQuery, &out, "r").body).unwrap();
    assert!(xml.contains("<Label>&lt;&amp;&gt;</Label>"), "{xml}");
    assert!(xml.contains("<Timestamps><member>1970-01-01T00:00:01.5Z</member></Timestamps>"));
    assert!(xml.contains("<StatusCode>Complete</StatusCode>"));
}

#[test]
fn errors_in_each_protocol() {
    let error =
        Error::InvalidParameterValue("The value <x> for parameter Period is invalid.".into());
    let r = encode_error(Protocol::AwsJson, &error, "req-9");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("InvalidParameterValue;Sender")
    );
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "__type": "com.amazonaws.cloudwatch#InvalidParameterValueException",
            "message": "The value <x> for parameter Period is invalid."})
    );

    let r = encode_error(Protocol::RpcV2Cbor, &error, "req-9");
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("InvalidParameterValue;Sender")
    );
    assert_eq!(r.header("smithy-protocol"), Some("rpc-v2-cbor"));
    let Value::Map(map) = cbor::decode(&r.body, &Limits::default()).unwrap() else {
        panic!()
    };
    assert_eq!(
        map["__type"],
        Value::String("com.amazonaws.cloudwatch#InvalidParameterValueException".into())
    );

    let r = encode_error(Protocol::AwsQuery, &error, "req-9");
    assert_eq!(r.header("x-amzn-query-error"), None);
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        "<ErrorResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><Error>\
         <Type>Sender</Type><Code>InvalidParameterValue</Code>\
         <Message>The value &lt;x&gt; for parameter Period is invalid.</Message></Error>\
         <RequestId>req-9</RequestId></ErrorResponse>"
    );
}

#[test]
fn statuses_codes_and_shapes() {
    let cases = [
        (
            Error::MissingParameter("X".into()),
            400,
            "MissingParameter",
            "MissingRequiredParameterException",
        ),
        (
            Error::ResourceNotFound("gone".into()),
            404,
            "ResourceNotFound",
            "ResourceNotFound",
        ),
        (
            Error::SignatureDoesNotMatch("bad".into()),
            403,
            "SignatureDoesNotMatch",
            "SignatureDoesNotMatch",
        ),
        (
            Error::InvalidClientTokenId("who".into()),
            403,
            "InvalidClientTokenId",
            "InvalidClientTokenId",
        ),
        (
            Error::InternalServiceError,
            500,
            "InternalServiceError",
            "InternalServiceFault",
        ),
        (
            Error::LimitExceeded("many".into()),
            400,
            "LimitExceeded",
            "LimitExceededFault",
        ),
        (
            Error::InvalidAction("x".into()),
            400,
            "InvalidAction",
            "InvalidAction",
        ),
    ];
    for (error, status, code, shape) in cases {
        assert_eq!(
            (error.status(), error.code(), error.shape()),
            (status, code, shape)
        );
    }
    let r = encode_error(Protocol::AwsJson, &Error::InternalServiceError, "r");
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("InternalServiceError;Receiver")
    );
    let xml =
        String::from_utf8(encode_error(Protocol::AwsQuery, &Error::InternalServiceError, "r").body)
            .unwrap();
    assert!(xml.contains("<Type>Receiver</Type>"));
}

#[test]
fn xml_escapes_control_characters_and_quotes() {
    let error = Error::InvalidParameterValue("a\u{1}b\"c'\td\u{ffff}".into());
    let xml = String::from_utf8(encode_error(Protocol::AwsQuery, &error, "r\"").body).unwrap();
    assert!(
        xml.contains("<Message>a\u{fffd}b&quot;c&apos;&#9;d\u{fffd}</Message>"),
        "{xml}"
    );
    assert!(xml.contains("<RequestId>r&quot;</RequestId>"));
}

#[test]
fn a_rejection_answers_in_its_protocol() {
    let head = RequestHead {
        method: "POST",
        path: "/",
        content_type: Some("application/x-www-form-urlencoded"),
        ..RequestHead::default()
    };
    let rejection =
        thermostat_cloudwatch::decode(&head, b"Action=Nope&Version=2010-08-01", &Limits::default())
            .unwrap_err();
    let r = encode_error(rejection.protocol, &rejection.error, "id");
    assert!(
        String::from_utf8(r.body)
            .unwrap()
            .contains("<Code>InvalidAction</Code>")
    );
}
