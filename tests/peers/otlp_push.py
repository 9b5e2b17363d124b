"""Pushes metrics to Thermostat with the real OpenTelemetry Python SDK and exporters.

Records, per export interval, a gauge, a monotonic counter and a histogram (explicit buckets,
or exponential with --exponential), exports them with the OTLP exporter over gRPC or HTTP
(protobuf), and prints one JSON object with what was recorded, so that the test compares it
with what Thermostat stored:

    {"counter_total": 42, "histogram": [values...], "gauge_last": 7.5, "exports": 3}

Usage: otlp_push.py --protocol grpc|http --endpoint URL --service NAME [--intervals N]
       [--temporality cumulative|delta] [--exponential] [--token TOKEN] [--seed S]
"""

import argparse
import json
import random
import sys

from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableGauge,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import (
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", choices=["grpc", "http"], required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--namespace", default=None)
    p.add_argument("--intervals", type=int, default=3)
    p.add_argument("--temporality", choices=["cumulative", "delta"], default="cumulative")
    p.add_argument("--exponential", action="store_true")
    p.add_argument("--token", default=None)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    headers = {"authorization": f"Bearer {args.token}"} if args.token else None
    temporality = {
        "cumulative": AggregationTemporality.CUMULATIVE,
        "delta": AggregationTemporality.DELTA,
    }[args.temporality]
    preferred = {
        Counter: temporality,
        UpDownCounter: AggregationTemporality.CUMULATIVE,
        Histogram: temporality,
        ObservableGauge: AggregationTemporality.CUMULATIVE,
    }
    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(
            endpoint=args.endpoint,
            insecure=True,
            headers=headers,
            preferred_temporality=preferred,
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(
            endpoint=args.endpoint,
            headers=headers,
            preferred_temporality=preferred,
        )

    # Exports happen when the script asks (force_flush), not on a timer.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    views = []
    if args.exponential:
        views.append(View(instrument_name="latency", aggregation=ExponentialBucketHistogramAggregation()))
    attributes = {"service.name": args.service}
    if args.namespace:
        attributes["service.namespace"] = args.namespace
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create(attributes),
        views=views,
    )
    meter = provider.get_meter("thermostat-test")
    gauge_value = {"v": 0.0}
    meter.create_observable_gauge(
        "queue_depth",
        callbacks=[lambda _options: [Observation(gauge_value["v"], {"queue": "jobs"})]],
        unit="1",
    )
    counter = meter.create_counter("requests", unit="{request}")
    histogram = meter.create_histogram("latency", unit="ms")

    rng = random.Random(args.seed)
    counter_total = 0
    recorded = []
    ok = True
    for _ in range(args.intervals):
        for _ in range(50):
            n = rng.randint(1, 5)
            counter.add(n, {"route": "/checkout"})
            counter_total += n
            v = round(rng.uniform(1, 900), 3)
            histogram.record(v, {"route": "/checkout"})
            recorded.append(v)
        gauge_value["v"] = float(rng.randint(0, 100))
        ok = provider.force_flush(timeout_millis=10_000) and ok
    provider.shutdown()
    print(
        json.dumps(
            {
                "counter_total": counter_total,
                "histogram": recorded,
                "gauge_last": gauge_value["v"],
                "exports": args.intervals,
                "flushed": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
