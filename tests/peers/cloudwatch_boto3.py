"""Drives Thermostat's CloudWatch API with the real boto3 client (issue 21).

Pushes data with put_metric_data (values with counts, a single value, statistic sets,
dimensions; one request gzip-compressed), reads it back with get_metric_statistics,
list_metrics and get_metric_data, and checks that a wrong secret is refused with
SignatureDoesNotMatch and a bad parameter with the modelled InvalidParameterValueException.
Fails (exit 1, the reason on stderr) on the first difference; prints one JSON object with what
it pushed on success:

    {"protocol": "smithy-rpc-v2-cbor", "timestamp_ms": ..., "latency_sum": 120.0, ...}

Usage: cloudwatch_boto3.py --endpoint URL --key-id ID --secret SECRET --namespace NS
       [--protocol smithy-rpc-v2-cbor|json|query] [--viewer-key-id ID (same secret)]
"""

import argparse
import datetime
import json
import sys

import botocore.model
from botocore.config import Config


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--protocol", default=None)
    parser.add_argument("--viewer-key-id", default=None)
    args = parser.parse_args()
    if args.protocol:
        # botocore picks the first protocol of this list that the service model offers.
        botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = (args.protocol,)
    import boto3  # after the protocol is chosen

    def client(secret=args.secret, key_id=args.key_id, **config):
        return boto3.client(
            "cloudwatch",
            endpoint_url=args.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, **config),
        )

    cw = client()
    protocol = cw.meta.service_model.resolved_protocol
    if args.protocol and protocol != args.protocol:
        fail(f"botocore chose {protocol}, not {args.protocol}")
    ns = args.namespace
    now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    t = now - datetime.timedelta(minutes=5)
    api = [{"Name": "Service", "Value": "api"}]
    web = [{"Name": "Service", "Value": "web"}]

    # Values with counts, gzip-compressed (every PutMetricData body of this client).
    client(request_min_compression_size_bytes=1).put_metric_data(
        Namespace=ns,
        MetricData=[
            {
                "MetricName": "Latency",
                "Dimensions": api,
                "Timestamp": t,
                "Values": [10, 20, 30],
                "Counts": [1, 2, 1],
                "Unit": "Milliseconds",
            }
        ],
    )
    cw.put_metric_data(
        Namespace=ns,
        MetricData=[
            {
                "MetricName": "Latency",
                "Dimensions": api,
                "Timestamp": t,
                "Value": 40,
                "Unit": "Milliseconds",
            },
            {
                "MetricName": "Requests",
                "Dimensions": api,
                "Timestamp": t,
                "StatisticValues": {
                    "SampleCount": 4,
                    "Sum": 100,
                    "Minimum": 10,
                    "Maximum": 40,
                },
                "Unit": "Count",
            },
            {
                "MetricName": "Requests",
                "Dimensions": web,
                "Timestamp": t,
                "Value": 7,
                "Unit": "Count",
            },
        ],
    )

    start, end = t - datetime.timedelta(minutes=1), t + datetime.timedelta(minutes=2)
    stats = cw.get_metric_statistics(
        Namespace=ns,
        MetricName="Latency",
        Dimensions=api,
        StartTime=start,
        EndTime=end,
        Period=60,
        Statistics=["Sum", "Average", "Maximum", "Minimum", "SampleCount"],
    )
    points = stats["Datapoints"]
    check(len(points) == 1, f"one datapoint, got {points}")
    p = points[0]
    check(p["Sum"] == 120, f"Sum 120, got {p}")
    check(p["Average"] == 24, f"Average 24, got {p}")
    check(p["Maximum"] == 40 and p["Minimum"] == 10, f"Maximum 40, Minimum 10, got {p}")
    check(p["SampleCount"] == 5, f"SampleCount 5, got {p}")
    check(p["Unit"] == "Milliseconds", f"Unit Milliseconds, got {p}")
    check(p["Timestamp"] == t, f"Timestamp {t}, got {p['Timestamp']}")
    check(stats["Label"] == "Latency", f"Label Latency, got {stats['Label']}")
    p50 = cw.get_metric_statistics(
        Namespace=ns,
        MetricName="Latency",
        Dimensions=api,
        StartTime=start,
        EndTime=end,
        Period=60,
        ExtendedStatistics=["p50"],
    )["Datapoints"]
    check(
        len(p50) == 1 and abs(p50[0]["ExtendedStatistics"]["p50"] - 20) <= 0.2,
        f"p50 20, got {p50}",
    )

    listed = cw.list_metrics(Namespace=ns)["Metrics"]
    names = sorted((m["MetricName"], m["Dimensions"][0]["Value"]) for m in listed)
    check(
        names == [("Latency", "api"), ("Requests", "api"), ("Requests", "web")],
        f"three metrics, got {listed}",
    )
    filtered = cw.list_metrics(
        Namespace=ns, MetricName="Requests", Dimensions=[{"Name": "Service", "Value": "web"}]
    )["Metrics"]
    check(
        len(filtered) == 1 and filtered[0]["Dimensions"] == web,
        f"Requests of web only, got {filtered}",
    )
    any_value = cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Service"}])["Metrics"]
    check(len(any_value) == 3, f"every metric with a Service dimension, got {any_value}")

    data = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "lat",
                "MetricStat": {
                    "Metric": {"Namespace": ns, "MetricName": "Latency", "Dimensions": api},
                    "Period": 60,
                    "Stat": "Sum",
                },
            },
            {
                "Id": "req",
                "MetricStat": {
                    "Metric": {"Namespace": ns, "MetricName": "Requests", "Dimensions": api},
                    "Period": 60,
                    "Stat": "Maximum",
                },
                "Label": "requests max",
            },
            # Metric math (issue 22): an expression over the two queries above.
            {"Id": "ratio", "Expression": "lat / req * 100", "Label": "latency per request"},
        ],
        StartTime=start,
        EndTime=end,
    )
    results = {r["Id"]: r for r in data["MetricDataResults"]}
    check(results["lat"]["Values"] == [120.0], f"lat [120], got {results['lat']}")
    check(results["lat"]["Timestamps"] == [t], f"lat at {t}, got {results['lat']}")
    check(results["req"]["Values"] == [40.0], f"req [40], got {results['req']}")
    check(results["req"]["Label"] == "requests max", f"req's label, got {results['req']}")
    check(results["lat"]["StatusCode"] == "Complete", f"Complete, got {results['lat']}")
    check(results["ratio"]["Values"] == [300.0], f"ratio [300], got {results['ratio']}")
    check(results["ratio"]["Timestamps"] == [t], f"ratio at {t}, got {results['ratio']}")
    check(
        results["ratio"]["Label"] == "latency per request", f"ratio's label, got {results['ratio']}"
    )

    from botocore.exceptions import ClientError

    try:
        client(secret="not-the-secret").put_metric_data(
            Namespace=ns, MetricData=[{"MetricName": "Latency", "Value": 1}]
        )
        fail("a wrong secret was accepted")
    except ClientError as e:
        code = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        check(code == "SignatureDoesNotMatch", f"SignatureDoesNotMatch, got {code}")
        check(status == 403, f"403, got {status}")

    if args.viewer_key_id:
        viewer = client(key_id=args.viewer_key_id)
        check(len(viewer.list_metrics(Namespace=ns)["Metrics"]) == 3, "a viewer lists")
        try:
            viewer.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "X", "Value": 1}])
            fail("a viewer's push was accepted")
        except ClientError as e:
            code = e.response["Error"]["Code"]
            check(code == "AccessDenied", f"AccessDenied for a viewer's push, got {code}")

    try:
        cw.get_metric_statistics(
            Namespace=ns,
            MetricName="Latency",
            StartTime=start,
            EndTime=end,
            Period=7,
            Statistics=["Sum"],
        )
        fail("Period 7 was accepted")
    except cw.exceptions.InvalidParameterValueException as e:
        bad_parameter = e.response["Error"]["Code"]
    except ClientError as e:
        fail(f"not the modelled exception: {e.response['Error']} ({type(e).__name__})")

    print(
        json.dumps(
            {
                "protocol": protocol,
                "timestamp_ms": int(t.timestamp() * 1000),
                "latency_sum": 120.0,
                "bad_parameter": bad_parameter,
            }
        )
    )


def check(ok, what):
    if not ok:
        fail(what)


def fail(what):
    print(f"cloudwatch_boto3.py: expected {what}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
