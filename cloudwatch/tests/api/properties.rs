//! Arbitrary input never panics and is answered with a value or a bounded error.

use proptest::prelude::*;
use thermostat_cloudwatch::{
    Error, Limits, Operation, Protocol, Request, RequestHead, cbor, decode, json, query,
};

fn small_limits() -> Limits {
    Limits {
        max_body_bytes: 4096,
        max_depth: 8,
        max_elements: 200,
        max_string_bytes: 64,
        max_list_len: 16,
    }
}

fn bounded(error: &Error) -> bool {
    error.to_string().len() < 1024 && (400..600).contains(&error.status())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        for result in [
            json::decode(&body, &small_limits()),
            cbor::decode(&body, &small_limits()),
            query::decode(&body, &small_limits()),
        ] {
            if let Err(e) = result {
                prop_assert!(bounded(&e), "{e}");
            }
        }
    }

    #[test]
    fn cbor_shaped_bytes_never_panic(
        body in proptest::collection::vec(
            prop_oneof![Just(0x9fu8), Just(0xbf), Just(0xff), Just(0x7f), Just(0x61), Just(0xc1),
                        Just(0xa1), Just(0x81), Just(0x1b), Just(0xfb), any::<u8>()],
            0..256)
    ) {
        if let Err(e) = cbor::decode(&body, &small_limits()) {
            prop_assert!(bounded(&e), "{e}");
        }
    }

    #[test]
    fn arbitrary_forms_never_panic(
        pairs in proptest::collection::vec(
            ("(Action|Version|Namespace|MetricName|MetricData|Dimensions|member|entry|key|value|Name|Value|[0-9]{1,3}|[a-z]{0,3})(\\.(member|entry|key|value|Name|Value|Values|[0-9]{1,4}|x)){0,6}",
             "[a-zA-Z0-9:.-]{0,12}"),
            0..24)
    ) {
        let form = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        if let Err(e) = query::decode(form.as_bytes(), &small_limits()) {
            prop_assert!(bounded(&e), "{e}");
        }
        let with_action = format!("Action=PutMetricData&Version=2010-08-01&{form}");
        let head = RequestHead {
            method: "POST",
            path: "/",
            content_type: Some("application/x-www-form-urlencoded"),
            ..RequestHead::default()
        };
        if let Err(rejection) = decode(&head, with_action.as_bytes(), &small_limits()) {
            prop_assert_eq!(rejection.protocol, Protocol::AwsQuery);
            prop_assert!(bounded(&rejection.error), "{}", rejection.error);
        }
    }

    #[test]
    fn arbitrary_json_trees_into_every_operation_never_panic(
        value in arbitrary_json(), op in 0usize..4
    ) {
        let operation = [
            Operation::PutMetricData,
            Operation::GetMetricStatistics,
            Operation::ListMetrics,
            Operation::GetMetricData,
        ][op];
        let body = value.to_string();
        if let Ok(tree) = json::decode(body.as_bytes(), &Limits::default())
            && let Err(e) = Request::from_value(operation, &tree, Protocol::AwsJson)
        {
            prop_assert!(bounded(&e), "{e}");
        }
    }
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let names = prop_oneof![
        Just("Namespace"),
        Just("MetricName"),
        Just("MetricData"),
        Just("Dimensions"),
        Just("Name"),
        Just("Value"),
        Just("Values"),
        Just("Counts"),
        Just("Timestamp"),
        Just("StatisticValues"),
        Just("SampleCount"),
        Just("Sum"),
        Just("Minimum"),
        Just("Maximum"),
        Just("Unit"),
        Just("StorageResolution"),
        Just("StartTime"),
        Just("EndTime"),
        Just("Period"),
        Just("Statistics"),
        Just("ExtendedStatistics"),
        Just("MetricDataQueries"),
        Just("Id"),
        Just("MetricStat"),
        Just("Metric"),
        Just("Stat"),
        Just("Expression"),
        Just("ReturnData"),
        Just("ScanBy"),
        Just("MaxDatapoints"),
        Just("LabelOptions"),
        Just("RecentlyActive"),
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[a-zA-Z0-9/:.]{0,8}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("Milliseconds")),
        Just(serde_json::Value::from("p99")),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::vec((names.clone(), inner), 0..6).prop_map(|entries| {
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}
