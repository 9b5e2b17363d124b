//! Golden requests, written by hand from the service model as botocore (JSON 1.0),
//! aws-sdk-rust (RPC v2 CBOR) and the AWS CLI v1 / CloudWatch agent (AWS Query) send them.

use thermostat_cloudwatch::request::{
    DatumValue, Dimension, DimensionFilter, GetMetricData, ListMetrics, MetricDatum, PutMetricData,
    QueryKind, ScanBy,
};
use thermostat_cloudwatch::{
    Error, Limits, Operation, Protocol, Rejection, Request, RequestHead, decode, decode_input,
};
use thermostat_metrics::{Statistic, Timestamp, Unit};

use crate::cbor_writer::{C, bytes};

pub(crate) fn json_head(operation: &'static str) -> (String, RequestHead<'static>) {
    let target = format!("GraniteServiceVersion20100801.{operation}");
    (
        target,
        RequestHead {
            method: "POST",
            path: "/",
            content_type: Some("application/x-amz-json-1.0"),
            ..RequestHead::default()
        },
    )
}

pub(crate) fn json(operation: &'static str, body: &str) -> Result<Request, Rejection> {
    let (target, head) = json_head(operation);
    let head = RequestHead {
        amz_target: Some(&target),
        ..head
    };
    decode(&head, body.as_bytes(), &Limits::default()).map(|call| {
        assert_eq!(call.protocol, Protocol::AwsJson);
        call.request
    })
}

pub(crate) fn cbor(operation: &'static str, body: &[u8]) -> Result<Request, Rejection> {
    let path = format!("/service/GraniteServiceVersion20100801/operation/{operation}");
    let head = RequestHead {
        method: "POST",
        path: &path,
        content_type: Some("application/cbor"),
        smithy_protocol: Some("rpc-v2-cbor"),
        ..RequestHead::default()
    };
    decode(&head, body, &Limits::default()).map(|call| {
        assert_eq!(call.protocol, Protocol::RpcV2Cbor);
        call.request
    })
}

pub(crate) fn query_post(body: &str) -> Result<Request, Rejection> {
    let head = RequestHead {
        method: "POST",
        path: "/",
        content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
        ..RequestHead::default()
    };
    decode(&head, body.as_bytes(), &Limits::default()).map(|call| {
        assert_eq!(call.protocol, Protocol::AwsQuery);
        call.request
    })
}

fn query_get(query: &str) -> Result<Request, Rejection> {
    let head = RequestHead {
        method: "GET",
        path: "/",
        query: Some(query),
        ..RequestHead::default()
    };
    decode(&head, b"", &Limits::default()).map(|call| call.request)
}

fn error_of(result: Result<Request, Rejection>) -> Error {
    match result {
        Ok(request) => panic!("accepted: {request:?}"),
        Err(rejection) => rejection.error,
    }
}

/// 2025-12-07T07:18:00.500Z
const T: i64 = 1_765_091_880_500;

fn expected_put() -> Request {
    Request::PutMetricData(PutMetricData {
        namespace: "MyApp".into(),
        metric_data: vec![
            MetricDatum {
                metric_name: "Latency".into(),
                dimensions: vec![Dimension {
                    name: "Host".into(),
                    value: "web-1".into(),
                }],
                timestamp: Some(Timestamp::from_millis(T)),
                value: DatumValue::Single(12.5),
                unit: Some(Unit::Milliseconds),
                storage_resolution_seconds: 1,
            },
            MetricDatum {
                metric_name: "Sizes".into(),
                dimensions: vec![],
                timestamp: None,
                value: DatumValue::Distribution {
                    values: vec![1.0, 2.0],
                    counts: vec![3.0, 4.0],
                },
                unit: None,
                storage_resolution_seconds: 60,
            },
        ],
        entity_metric_data: vec![],
        strict_entity_validation: false,
    })
}

#[test]
fn put_metric_data_is_the_same_request_in_all_three_protocols() {
    let from_json = json(
        "PutMetricData",
        r#"{"Namespace": "MyApp", "MetricData": [
            {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "web-1"}],
             "Timestamp": 1765091880.5, "Value": 12.5, "Unit": "Milliseconds", "StorageResolution": 1},
            {"MetricName": "Sizes", "Values": [1.0, 2], "Counts": [3, 4]}]}"#,
    )
    .unwrap();
    assert_eq!(from_json, expected_put());

    let body = bytes(&C::MapIndef(vec![
        ("Namespace", C::Text("MyApp")),
        (
            "MetricData",
            C::Array(vec![
                C::Map(vec![
                    ("MetricName", C::Text("Latency")),
                    (
                        "Dimensions",
                        C::ArrayIndef(vec![C::Map(vec![
                            ("Name", C::Text("Host")),
                            ("Value", C::Text("web-1")),
                        ])]),
                    ),
                    ("Timestamp", C::Tag1(1_765_091_880.5)),
                    ("Value", C::Float(12.5)),
                    ("Unit", C::Text("Milliseconds")),
                    ("StorageResolution", C::Int(1)),
                ]),
                C::Map(vec![
                    ("MetricName", C::Text("Sizes")),
                    ("Values", C::Array(vec![C::Float(1.0), C::Float(2.0)])),
                    ("Counts", C::Array(vec![C::Float(3.0), C::Float(4.0)])),
                ]),
            ]),
        ),
    ]));
    assert_eq!(cbor("PutMetricData", &body).unwrap(), expected_put());

    let form = "Action=PutMetricData&Version=2010-08-01&Namespace=MyApp\
        &MetricData.member.1.MetricName=Latency\
        &MetricData.member.1.Dimensions.member.1.Name=Host\
        &MetricData.member.1.Dimensions.member.1.Value=web-1\
        &MetricData.member.1.Timestamp=2025-12-07T07%3A18%3A00.500Z\
        &MetricData.member.1.Value=12.5&MetricData.member.1.Unit=Milliseconds\
        &MetricData.member.1.StorageResolution=1\
        &MetricData.member.2.MetricName=Sizes\
        &MetricData.member.2.Values.member.1=1&MetricData.member.2.Values.member.2=2.0\
        &MetricData.member.2.Counts.member.1=3&MetricData.member.2.Counts.member.2=4";
    assert_eq!(query_post(form).unwrap(), expected_put());
}

#[test]
fn query_timestamps_without_an_offset_are_utc() {
    let form = "Action=PutMetricData&Version=2010-08-01&Namespace=N\
        &MetricData.member.1.MetricName=M&MetricData.member.1.Value=1\
        &MetricData.member.1.Timestamp=2025-12-07T07:18:00.5";
    let Request::PutMetricData(put) = query_post(form).unwrap() else {
        panic!()
    };
    assert_eq!(
        put.metric_data[0].timestamp,
        Some(Timestamp::from_millis(T))
    );
}

#[test]
fn get_metric_statistics_by_query_string_and_json() {
    let request = query_get(
        "Action=GetMetricStatistics&Version=2010-08-01&Namespace=AWS%2FEC2\
         &MetricName=CPUUtilization&Dimensions.member.1.Name=InstanceId\
         &Dimensions.member.1.Value=i-1&StartTime=2025-12-07T00%3A00%3A00Z\
         &EndTime=2025-12-07T01%3A00%3A00Z&Period=300\
         &Statistics.member.1=Average&Statistics.member.2=Maximum&Unit=Percent",
    )
    .unwrap();
    let Request::GetMetricStatistics(get) = &request else {
        panic!("{request:?}")
    };
    assert_eq!(get.metric.namespace, "AWS/EC2");
    assert_eq!(get.period_seconds, 300);
    assert_eq!(get.statistics, vec![Statistic::Average, Statistic::Maximum]);
    assert_eq!(
        get.end_time.as_millis() - get.start_time.as_millis(),
        3_600_000
    );
    assert_eq!(get.unit, Some(Unit::Percent));

    let from_json = json(
        "GetMetricStatistics",
        r#"{"Namespace":"AWS/EC2","MetricName":"CPUUtilization",
            "Dimensions":[{"Name":"InstanceId","Value":"i-1"}],
            "StartTime":1765065600,"EndTime":1765069200.0,"Period":300,
            "Statistics":["Average","Maximum"],"Unit":"Percent"}"#,
    )
    .unwrap();
    assert_eq!(from_json, request);

    let percentiles = json(
        "GetMetricStatistics",
        r#"{"Namespace":"N","MetricName":"M","StartTime":0,"EndTime":60,"Period":60,
            "ExtendedStatistics":["p99","p99.9"]}"#,
    )
    .unwrap();
    let Request::GetMetricStatistics(get) = percentiles else {
        panic!()
    };
    assert_eq!(get.statistics.len(), 2);
    assert!(get.statistics.iter().all(Statistic::is_percentile));
}

#[test]
fn list_metrics_with_filters_and_an_empty_query_list() {
    let request = query_post(
        "Action=ListMetrics&Version=2010-08-01&Namespace=MyApp\
         &Dimensions.member.1.Name=Host&Dimensions.member.2.Name=Az\
         &Dimensions.member.2.Value=a&RecentlyActive=PT3H&NextToken=abc",
    )
    .unwrap();
    assert_eq!(
        request,
        Request::ListMetrics(ListMetrics {
            namespace: Some("MyApp".into()),
            metric_name: None,
            dimensions: vec![
                DimensionFilter {
                    name: "Host".into(),
                    value: None
                },
                DimensionFilter {
                    name: "Az".into(),
                    value: Some("a".into())
                },
            ],
            next_token: Some("abc".into()),
            recently_active: true,
            include_linked_accounts: false,
            owning_account: None,
        })
    );
    // botocore's query serializer sends an empty list as `Dimensions=`.
    let empty = query_post("Action=ListMetrics&Version=2010-08-01&Dimensions=").unwrap();
    let Request::ListMetrics(list) = empty else {
        panic!()
    };
    assert!(list.dimensions.is_empty());
    // JSON with no members at all (botocore sends `{}`), and an empty CBOR body.
    assert!(json("ListMetrics", "{}").is_ok());
    assert!(cbor("ListMetrics", b"").is_ok());
}

#[test]
fn get_metric_data_in_cbor() {
    let body = bytes(&C::Map(vec![
        (
            "MetricDataQueries",
            C::Array(vec![
                C::Map(vec![
                    ("Id", C::Text("m1")),
                    (
                        "MetricStat",
                        C::Map(vec![
                            (
                                "Metric",
                                C::Map(vec![
                                    ("Namespace", C::Text("MyApp")),
                                    ("MetricName", C::Text("Latency")),
                                ]),
                            ),
                            ("Period", C::Int(60)),
                            ("Stat", C::Text("p99")),
                        ]),
                    ),
                    ("ReturnData", C::Bool(false)),
                ]),
                C::Map(vec![
                    ("Id", C::Text("e1")),
                    ("Expression", C::Text("m1 * 2")),
                    ("Label", C::Text("doubled")),
                ]),
            ]),
        ),
        ("StartTime", C::Tag1(0.0)),
        ("EndTime", C::Tag1(3600.0)),
        ("ScanBy", C::Text("TimestampAscending")),
        ("MaxDatapoints", C::Int(100)),
        ("LabelOptions", C::Map(vec![("Timezone", C::Text("+0130"))])),
    ]));
    let Request::GetMetricData(get) = cbor("GetMetricData", &body).unwrap() else {
        panic!()
    };
    let GetMetricData {
        metric_data_queries: queries,
        scan_by,
        max_datapoints,
        label_timezone,
        ..
    } = get;
    assert_eq!(scan_by, ScanBy::TimestampAscending);
    assert_eq!(max_datapoints, Some(100));
    assert_eq!(label_timezone.as_deref(), Some("+0130"));
    let QueryKind::MetricStat(stat) = &queries[0].kind else {
        panic!()
    };
    assert_eq!(stat.stat.name(), "p99");
    assert!(!queries[0].return_data);
    assert_eq!(queries[1].kind, QueryKind::Expression("m1 * 2".into()));
    assert!(queries[1].return_data);
}

#[test]
fn detection_answers_in_the_protocol_the_request_spoke() {
    let cbor_path = RequestHead {
        method: "POST",
        path: "/service/GraniteServiceVersion20100801/operation/Nope",
        ..RequestHead::default()
    };
    assert_eq!(Protocol::detect(&cbor_path), Protocol::RpcV2Cbor);
    let json = RequestHead {
        amz_target: Some("X"),
        ..RequestHead::default()
    };
    assert_eq!(Protocol::detect(&json), Protocol::AwsJson);
    assert_eq!(
        Protocol::detect(&RequestHead::default()),
        Protocol::AwsQuery
    );
}

#[test]
fn unknown_and_unserved_operations_are_invalid_action() {
    assert!(matches!(
        error_of(json("Frobnicate", "{}")),
        Error::InvalidAction(m) if m.contains("Frobnicate")
    ));
    assert!(matches!(
        error_of(cbor("Frobnicate", b"")),
        Error::InvalidAction(_)
    ));
    assert!(matches!(
        error_of(query_post("Action=Frobnicate&Version=2010-08-01")),
        Error::InvalidAction(_)
    ));
    // Known to the service model but not served yet: refused by name.
    assert!(matches!(
        error_of(json("PutDashboard", "{}")),
        Error::InvalidAction(m) if m.contains("PutDashboard")
    ));
    // The other service's target prefix.
    let head = RequestHead {
        method: "POST",
        path: "/",
        content_type: Some("application/x-amz-json-1.0"),
        amz_target: Some("Logs_20140328.PutLogEvents"),
        ..RequestHead::default()
    };
    let rejection = decode(&head, b"{}", &Limits::default()).unwrap_err();
    assert_eq!(rejection.protocol, Protocol::AwsJson);
    assert!(matches!(rejection.error, Error::InvalidAction(_)));
    assert_eq!(
        error_of(query_post("Version=2010-08-01")),
        Error::MissingAction
    );
    assert_eq!(
        error_of(query_post("Action=ListMetrics")),
        Error::MissingParameter("Version".into())
    );
}

#[test]
fn heads_each_protocol_refuses() {
    let limits = Limits::default();
    // JSON with the wrong Content-Type.
    let head = RequestHead {
        method: "POST",
        path: "/",
        content_type: Some("application/json"),
        amz_target: Some("GraniteServiceVersion20100801.ListMetrics"),
        ..RequestHead::default()
    };
    let rejection = decode(&head, b"{}", &limits).unwrap_err();
    assert!(matches!(rejection.error, Error::UnsupportedMediaType(_)));
    assert_eq!(rejection.error.status(), 415);
    // CBOR without smithy-protocol.
    let head = RequestHead {
        method: "POST",
        path: "/service/GraniteServiceVersion20100801/operation/ListMetrics",
        content_type: Some("application/cbor"),
        ..RequestHead::default()
    };
    assert!(matches!(
        decode(&head, b"\xa0", &limits).unwrap_err().error,
        Error::InvalidAction(_)
    ));
    // Query POST that is not a form.
    let head = RequestHead {
        method: "POST",
        path: "/",
        content_type: Some("text/plain"),
        ..RequestHead::default()
    };
    let rejection = decode(&head, b"Action=ListMetrics&Version=2010-08-01", &limits).unwrap_err();
    assert_eq!(rejection.protocol, Protocol::AwsQuery);
    assert!(matches!(rejection.error, Error::UnsupportedMediaType(_)));
    // decode_input for the operations without a typed request yet.
    let head = RequestHead {
        method: "GET",
        path: "/",
        query: Some("Action=DescribeAlarms&Version=2010-08-01&AlarmNames.member.1=a"),
        ..RequestHead::default()
    };
    let (protocol, operation, _value) = decode_input(&head, b"", &limits).unwrap();
    assert_eq!(
        (protocol, operation),
        (Protocol::AwsQuery, Operation::DescribeAlarms)
    );
}

#[test]
fn missing_and_invalid_parameters_name_the_parameter() {
    assert_eq!(
        error_of(json(
            "PutMetricData",
            r#"{"MetricData":[{"MetricName":"M","Value":1}]}"#
        )),
        Error::MissingParameter("Namespace".into())
    );
    assert_eq!(
        error_of(json(
            "PutMetricData",
            r#"{"Namespace":"N","MetricData":[{"Value":1}]}"#
        )),
        Error::MissingParameter("MetricData.member.1.MetricName".into())
    );
    let e = error_of(query_post(
        "Action=PutMetricData&Version=2010-08-01&Namespace=N\
         &MetricData.member.1.MetricName=M&MetricData.member.1.Value=abc",
    ));
    assert_eq!(
        e,
        Error::InvalidParameterValue(
            "The value \"abc\" for parameter MetricData.member.1.Value is invalid.".into()
        )
    );
    assert_eq!(e.code(), "InvalidParameterValue");
    let e = error_of(json(
        "PutMetricData",
        r#"{"Namespace":"N","MetricData":[{"MetricName":"M","Value":1,
            "StatisticValues":{"SampleCount":1,"Sum":1,"Minimum":1,"Maximum":1}}]}"#,
    ));
    assert_eq!(
        e,
        Error::InvalidParameterCombination(
            "The parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues are mutually exclusive and you have specified both.".into()
        )
    );
    // A JSON string where a number belongs (AWS Query is the only textual protocol).
    assert!(matches!(
        error_of(json("PutMetricData", r#"{"Namespace":"N","MetricData":[{"MetricName":"M","Value":"1"}]}"#)),
        Error::InvalidParameterValue(m) if m.contains("MetricData.member.1.Value")
    ));
    assert!(matches!(
        error_of(json("PutMetricData", r#"{"Namespace":"AWS/EC2","MetricData":[{"MetricName":"M","Value":1}]}"#)),
        Error::InvalidParameterValue(m) if m.contains("reserved")
    ));
    assert!(matches!(
        error_of(json("PutMetricData", r#"{"Namespace":"N","MetricData":[{"MetricName":"M","Values":[1,2],"Counts":[1]}]}"#)),
        Error::InvalidParameterValue(m) if m.contains("same size")
    ));
    assert!(matches!(
        error_of(json(
            "PutMetricData",
            r#"{"Namespace":"N","MetricData":[{"MetricName":"M","Value":1e300}]}"#
        )),
        Error::InvalidParameterValue(_)
    ));
    assert!(matches!(
        error_of(json("GetMetricStatistics", r#"{"Namespace":"N","MetricName":"M","StartTime":60,"EndTime":0,"Period":60,"Statistics":["Sum"]}"#)),
        Error::InvalidParameterValue(m) if m.contains("StartTime must be less than")
    ));
    assert!(matches!(
        error_of(json("GetMetricStatistics", r#"{"Namespace":"N","MetricName":"M","StartTime":0,"EndTime":60,"Period":61,"Statistics":["Sum"]}"#)),
        Error::InvalidParameterValue(m) if m.contains("Period")
    ));
    assert!(matches!(
        error_of(json(
            "GetMetricStatistics",
            r#"{"Namespace":"N","MetricName":"M","StartTime":0,"EndTime":60,"Period":60}"#
        )),
        Error::InvalidParameterCombination(_)
    ));
    assert!(matches!(
        error_of(json("GetMetricStatistics", r#"{"Namespace":"N","MetricName":"M","StartTime":0,"EndTime":60,"Period":60,"Statistics":["p99"]}"#)),
        Error::InvalidParameterValue(m) if m.contains("Statistics.member.1")
    ));
    assert_eq!(
        error_of(json("GetMetricData", r#"{"StartTime":0,"EndTime":60}"#)),
        Error::MissingParameter("MetricDataQueries".into())
    );
    assert!(matches!(
        error_of(json("GetMetricData", r#"{"StartTime":0,"EndTime":60,"MetricDataQueries":[{"Id":"Bad"}]}"#)),
        Error::InvalidParameterValue(m) if m.contains("MetricDataQueries.member.1.Id")
    ));
    assert!(matches!(
        error_of(json("GetMetricData", r#"{"StartTime":0,"EndTime":60,"MetricDataQueries":[{"Id":"a","Expression":"x"},{"Id":"a","Expression":"y"}]}"#)),
        Error::InvalidParameterValue(m) if m.contains("more than one")
    ));
    assert!(matches!(
        error_of(json("GetMetricData", r#"{"StartTime":0,"EndTime":60,"MetricDataQueries":[{"Id":"a"}]}"#)),
        Error::InvalidParameterValue(m) if m.contains("Exactly one")
    ));
    assert!(matches!(
        error_of(json("ListMetrics", r#"{"RecentlyActive":"PT1H"}"#)),
        Error::InvalidParameterValue(m) if m.contains("RecentlyActive")
    ));
}

#[test]
fn query_lists_with_gaps_duplicates_or_bad_indexes_are_errors() {
    for form in [
        "Action=ListMetrics&Version=2010-08-01&Dimensions.member.2.Name=a",
        "Action=ListMetrics&Version=2010-08-01&Dimensions.member.0.Name=a",
        "Action=ListMetrics&Version=2010-08-01&Dimensions.member.01.Name=a",
        "Action=ListMetrics&Version=2010-08-01&Dimensions.member.x.Name=a",
        "Action=ListMetrics&Version=2010-08-01&Namespace=a&Namespace=b",
        "Action=ListMetrics&Version=2010-08-01&Namespace=a&Namespace.x=b",
        "Action=ListMetrics&Version=2010-08-01&Namespace..x=b",
    ] {
        let e = error_of(query_post(form));
        assert!(matches!(e, Error::Malformed(_)), "{form}: {e:?}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn entity_metric_data_with_query_maps() {
    let form = "Action=PutMetricData&Version=2010-08-01&Namespace=N\
        &EntityMetricData.member.1.Entity.KeyAttributes.entry.1.key=Type\
        &EntityMetricData.member.1.Entity.KeyAttributes.entry.1.value=Service\
        &EntityMetricData.member.1.Entity.KeyAttributes.entry.2.key=Name\
        &EntityMetricData.member.1.Entity.KeyAttributes.entry.2.value=checkout\
        &EntityMetricData.member.1.Entity.Attributes.entry.1.key=PlatformType\
        &EntityMetricData.member.1.Entity.Attributes.entry.1.value=Generic\
        &EntityMetricData.member.1.MetricData.member.1.MetricName=M\
        &EntityMetricData.member.1.MetricData.member.1.Value=1";
    let Request::PutMetricData(put) = query_post(form).unwrap() else {
        panic!()
    };
    assert!(put.metric_data.is_empty());
    let entity = put.entity_metric_data[0].entity.as_ref().unwrap();
    assert_eq!(entity.key_attributes["Name"], "checkout");
    assert_eq!(entity.attributes["PlatformType"], "Generic");
    assert_eq!(put.entity_metric_data[0].metric_data[0].metric_name, "M");

    // An invalid entity (one key attribute) is dropped unless validation is strict.
    let body = r#"{"Namespace":"N","EntityMetricData":[{"Entity":{"KeyAttributes":{"Type":"Service"}},
        "MetricData":[{"MetricName":"M","Value":1}]}]}"#;
    let Request::PutMetricData(put) = json("PutMetricData", body).unwrap() else {
        panic!()
    };
    assert_eq!(put.entity_metric_data[0].entity, None);
    let strict = body.replacen('{', "{\"StrictEntityValidation\":true,", 1);
    assert!(matches!(
        error_of(json("PutMetricData", &strict)),
        Error::InvalidParameterValue(m) if m.contains("EntityMetricData.member.1.Entity.KeyAttributes")
    ));
    // A map entry without its value.
    let e = error_of(query_post(
        "Action=PutMetricData&Version=2010-08-01&Namespace=N\
         &EntityMetricData.member.1.Entity.KeyAttributes.entry.1.key=Type",
    ));
    assert!(matches!(e, Error::Malformed(_)), "{e:?}");
}

#[test]
fn cbor_number_encodings_sdks_use() {
    use thermostat_cloudwatch::{Value, cbor};
    let limits = Limits::default();
    // Half, single and double precision; tag 1 holding an integer or a float.
    assert_eq!(
        cbor::decode(&[0xf9, 0x3c, 0x00], &limits).unwrap(),
        Value::Float(1.0)
    );
    assert_eq!(
        cbor::decode(&[0xfa, 0x3f, 0xc0, 0, 0], &limits).unwrap(),
        Value::Float(1.5)
    );
    assert_eq!(
        cbor::decode(&[0xc1, 0x1a, 0x69, 0x35, 0x2a, 0x28], &limits).unwrap(),
        Value::Timestamp(Timestamp::from_secs(1_765_091_880))
    );
    assert_eq!(
        cbor::decode(&[0xc1, 0x20], &limits).unwrap(),
        Value::Timestamp(Timestamp::from_secs(-1))
    );
    assert_eq!(
        cbor::decode(&[0x38, 0x63], &limits).unwrap(),
        Value::Int(-100)
    );
    assert_eq!(cbor::decode(&[0xf6], &limits).unwrap(), Value::Null);
    // An integral double where an Integer member belongs is read as the integer.
    let body = bytes(&C::Map(vec![
        ("Namespace", C::Text("N")),
        ("MetricName", C::Text("M")),
        ("StartTime", C::Tag1(0.0)),
        ("EndTime", C::Tag1(60.0)),
        ("Period", C::Float(60.0)),
        ("Statistics", C::Array(vec![C::Text("Sum")])),
    ]));
    let Request::GetMetricStatistics(get) = cbor("GetMetricStatistics", &body).unwrap() else {
        panic!()
    };
    assert_eq!(get.period_seconds, 60);
}
