"""Drives Thermostat's CloudWatch alarm operations with the real boto3 client (issue 21).

Commands:

  lifecycle  put_metric_alarm on a 10-second high-resolution metric; the alarm starts in
             INSUFFICIENT_DATA, goes OK then ALARM on data pushed with put_metric_data (on
             the server's own evaluation ticks); describe_alarms (state, ARN, filters),
             describe_alarms_for_metric, put_composite_alarm (it follows the alarm to
             ALARM; an unknown reference is refused), set_alarm_state, disable/enable_alarm_actions,
             describe_alarm_history, a bad parameter (InvalidParameterValue), a YAML-owned
             alarm refused naming its file, delete_alarms, and delete again (ResourceNotFound).
  create     creates --alarm (TreatMissingData=ignore) and sets it to ALARM.
  check      describes --alarm and prints it.

Fails (exit 1, the reason on stderr) on the first difference; prints one JSON object on
success.

Usage: cloudwatch_alarms_boto3.py COMMAND --endpoint URL --key-id ID --secret SECRET
       [--agent-key-id ID (pushes; same secret)] [--alarm NAME] [--yaml-alarm NAME --yaml-file FILE] [--protocol P]
"""

import argparse
import datetime
import json
import sys
import time

import botocore.model
from botocore.config import Config
from botocore.exceptions import ClientError


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"].get("Message", "")
    fail("the call succeeded, an error was expected")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["lifecycle", "create", "check", "math", "anomaly"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--agent-key-id", default=None)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--alarm", default="api-latency-high")
    parser.add_argument("--yaml-alarm", default=None)
    parser.add_argument("--yaml-file", default=None)
    parser.add_argument("--protocol", default=None)
    args = parser.parse_args()
    if args.protocol:
        botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = (args.protocol,)
    import boto3  # after the protocol is chosen

    def client(key_id):
        return boto3.client(
            "cloudwatch",
            endpoint_url=args.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=args.secret,
            config=Config(retries={"max_attempts": 1}),
        )

    cw = client(args.key_id)
    if args.command == "lifecycle":
        out = lifecycle(cw, client(args.agent_key_id or args.key_id), args)
    elif args.command == "create":
        out = create(cw, args.alarm)
    elif args.command == "anomaly":
        out = anomaly_alarm(cw, args.alarm)
    elif args.command == "math":
        out = math_alarm(cw, client(args.agent_key_id or args.key_id), args.alarm)
    else:
        out = describe_one(cw, args.alarm)
        out["Tags"] = tags(cw, out["AlarmArn"])
    out["protocol"] = cw.meta.service_model.resolved_protocol
    print(json.dumps(out, default=str))


def describe_one(cw, name):
    alarms = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    check(len(alarms) == 1, f"describe_alarms({name}) found {len(alarms)} alarms")
    return alarms[0]


def wait_for(cw, name, state, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alarm = describe_one(cw, name)
        if alarm["StateValue"] == state:
            return alarm
        time.sleep(0.5)
    fail(f"{name} did not reach {state} within {timeout_s} s: {alarm}")


def push(cw, value):
    cw.put_metric_data(
        Namespace="Alarms/Boto",
        MetricData=[
            {
                "MetricName": "Latency",
                "Dimensions": [{"Name": "Service", "Value": "api"}],
                "Timestamp": datetime.datetime.now(datetime.timezone.utc),
                "Value": value,
                "Unit": "Milliseconds",
                "StorageResolution": 1,
            }
        ],
    )


ALARM = dict(
    Namespace="Alarms/Boto",
    MetricName="Latency",
    Dimensions=[{"Name": "Service", "Value": "api"}],
    Statistic="Maximum",
    Period=10,
    EvaluationPeriods=1,
    DatapointsToAlarm=1,
    Threshold=50.0,
    ComparisonOperator="GreaterThanThreshold",
    TreatMissingData="missing",
    AlarmDescription="API latency above 50 ms",
    # A webhook on a closed loopback port: the actions run and fail fast, off the network.
    AlarmActions=["http://127.0.0.1:9/thermostat-test-hook"],
)


def lifecycle(cw, agent, args):
    name = args.alarm
    out = {}
    cw.put_metric_alarm(AlarmName=name, **ALARM)
    alarm = describe_one(cw, name)
    check(alarm["StateValue"] == "INSUFFICIENT_DATA", f"a new alarm: {alarm}")
    check(
        alarm["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:000000000000:alarm:{name}",
        f"ARN: {alarm['AlarmArn']}",
    )
    for key in ["Namespace", "MetricName", "Statistic", "Period", "Threshold",
                "ComparisonOperator", "TreatMissingData", "AlarmDescription",
                "AlarmActions", "EvaluationPeriods", "DatapointsToAlarm", "Dimensions"]:
        check(alarm[key] == ALARM[key], f"{key}: {alarm[key]!r} != {ALARM[key]!r}")
    check(alarm["ActionsEnabled"] is True, f"ActionsEnabled: {alarm}")
    check("StateUpdatedTimestamp" in alarm, f"StateUpdatedTimestamp: {alarm}")

    # Filters: prefix, state value; YAML alarms are listed with the API's.
    by_prefix = cw.describe_alarms(AlarmNamePrefix=name[:5])["MetricAlarms"]
    check([a["AlarmName"] for a in by_prefix] == [name], f"prefix: {by_prefix}")
    insufficient = cw.describe_alarms(StateValue="INSUFFICIENT_DATA")["MetricAlarms"]
    check(name in [a["AlarmName"] for a in insufficient], f"state filter: {insufficient}")
    every = [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]]
    if args.yaml_alarm:
        check(args.yaml_alarm in every and name in every, f"both sources: {every}")
    out["listed"] = every

    # INSUFFICIENT_DATA -> OK -> ALARM on pushed data, on the server's own ticks.
    push(agent, 10.0)
    wait_for(cw, name, "OK")
    push(agent, 90.0)
    alarm = wait_for(cw, name, "ALARM")
    out["alarm_reason"] = alarm["StateReason"]

    # A composite alarm over it, evaluated on the same ticks.
    composite = name + "-any"
    cw.put_composite_alarm(
        AlarmName=composite,
        AlarmRule=f'ALARM("{name}")',
        AlarmDescription="Any API alarm",
    )
    deadline = time.monotonic() + 60
    while True:
        found = cw.describe_alarms(AlarmNames=[composite], AlarmTypes=["CompositeAlarm"])[
            "CompositeAlarms"
        ]
        check(len(found) == 1, f"composite: {found}")
        if found[0]["StateValue"] == "ALARM":
            break
        check(time.monotonic() < deadline, f"composite not in ALARM: {found}")
        time.sleep(0.5)
    check(found[0]["AlarmRule"] == f'ALARM("{name}")', f"{found}")
    check(found[0]["AlarmArn"].endswith(f":alarm:{composite}"), f"{found}")
    code, message = error_code(lambda: cw.put_composite_alarm(
        AlarmName=composite + "-bad", AlarmRule='ALARM("no-such-alarm")'))
    check(code == "InvalidParameterValue" and "AlarmRule" in message, f"{code}: {message}")
    # The relations: the composite's children, and the alarm's parents.
    children = cw.describe_alarms(ChildrenOfAlarmName=composite)
    check([a["AlarmName"] for a in children["MetricAlarms"]] == [name]
          and children["CompositeAlarms"] == [], f"children: {children}")
    parents = cw.describe_alarms(ParentsOfAlarmName=name)
    check([a["AlarmName"] for a in parents["CompositeAlarms"]] == [composite]
          and parents["MetricAlarms"] == [], f"parents: {parents}")
    code, _ = error_code(lambda: cw.describe_alarms(ParentsOfAlarmName=name, StateValue="OK"))
    check(code == "InvalidParameterCombination", f"parents with a filter: {code}")
    cw.delete_alarms(AlarmNames=[composite])
    out["composite"] = "ALARM"

    for_metric = cw.describe_alarms_for_metric(
        Namespace="Alarms/Boto",
        MetricName="Latency",
        Dimensions=[{"Name": "Service", "Value": "api"}],
    )["MetricAlarms"]
    check([a["AlarmName"] for a in for_metric] == [name], f"for metric: {for_metric}")

    # SetAlarmState, then the history: newest first.
    cw.set_alarm_state(
        AlarmName=name, StateValue="OK", StateReason="Checked by hand",
        StateReasonData=json.dumps({"by": "boto3"}),
    )
    alarm = describe_one(cw, name)
    check(alarm["StateValue"] == "OK" and alarm["StateReason"] == "Checked by hand", f"{alarm}")
    history = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")[
        "AlarmHistoryItems"
    ]
    summaries = [h["HistorySummary"] for h in history]
    check(len(summaries) >= 3, f"history: {summaries}")
    check("from ALARM to OK" in summaries[0], f"newest first: {summaries}")
    check(any("from OK to ALARM" in s for s in summaries), f"OK to ALARM: {summaries}")
    check(any("from INSUFFICIENT_DATA to OK" in s for s in summaries), f"{summaries}")
    check(all(h["AlarmName"] == name and h["HistoryItemType"] == "StateUpdate"
              for h in history), f"{history}")
    data = json.loads(history[0]["HistoryData"])
    check(data["newState"]["stateValue"] == "OK", f"HistoryData: {data}")
    everything = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    check(any(h["HistoryItemType"] == "ConfigurationUpdate" for h in everything),
          f"creation item: {everything}")
    out["history"] = summaries

    # Every alarm's history, paged two items at a time through boto3's paginator: the same
    # items as one big page, newest first, each once.
    whole = cw.describe_alarm_history(MaxRecords=100)["AlarmHistoryItems"]
    key = lambda h: (h["AlarmName"], h["Timestamp"], h["HistoryItemType"], h["HistorySummary"])
    paged = [h for page in cw.get_paginator("describe_alarm_history").paginate(
        PaginationConfig={"PageSize": 2}) for h in page["AlarmHistoryItems"]]
    # A tick between the two reads may add newer items: compare what both saw.
    check(len(whole) < 100, f"one page holds it all: {len(whole)}")
    paged = [h for h in paged if h["Timestamp"] <= whole[0]["Timestamp"]]
    check(len(whole) >= 4 and len({h["AlarmName"] for h in whole}) >= 2,
          f"several alarms' history: {whole}")
    check([key(h) for h in paged] == [key(h) for h in whole], f"paged {paged} / {whole}")
    check(all(a["Timestamp"] >= b["Timestamp"] for a, b in zip(paged, paged[1:])),
          "newest first")
    code, _ = error_code(lambda: cw.describe_alarm_history(NextToken="not-ours"))
    check(code == "InvalidNextToken", f"a foreign token: {code}")
    out["every_history"] = len(paged)

    # Actions off and on.
    cw.disable_alarm_actions(AlarmNames=[name])
    check(describe_one(cw, name)["ActionsEnabled"] is False, "actions disabled")
    cw.enable_alarm_actions(AlarmNames=[name])
    check(describe_one(cw, name)["ActionsEnabled"] is True, "actions enabled")

    # The alarms core's rules, in CloudWatch's codes.
    bad = dict(ALARM, EvaluationPeriods=1, DatapointsToAlarm=3)
    code, message = error_code(lambda: cw.put_metric_alarm(AlarmName=name + "-bad", **bad))
    check(code == "InvalidParameterValue", f"{code}: {message}")
    check("DatapointsToAlarm" in message, f"names the parameter: {message}")
    out["bad_parameter"] = message
    try:
        cw.put_metric_alarm(AlarmName=name + "-bad", **bad)
    except cw.exceptions.InvalidParameterValueException:
        pass
    # A scaling action must name a group and policy of the configuration, not be kept unused.
    code, message = error_code(lambda: cw.put_metric_alarm(
        AlarmName=name + "-scales", **dict(ALARM, AlarmActions=["policy:no-such-group/up"])))
    check(code == "InvalidParameterValue" and "AlarmActions.member.1" in message
          and "unknown scaling group" in message, f"scaling action: {code}: {message}")

    # An alarm defined in a file is the file's.
    if args.yaml_alarm:
        code, message = error_code(
            lambda: cw.put_metric_alarm(AlarmName=args.yaml_alarm, **ALARM))
        check(code == "InvalidParameterValue", f"{code}: {message}")
        check(args.yaml_file in message, f"names the file: {message}")
        out["yaml_owned"] = message
        code, _ = error_code(lambda: cw.delete_alarms(AlarmNames=[args.yaml_alarm]))
        check(code == "InvalidParameterValue", f"delete of a file's alarm: {code}")
        cw.set_alarm_state(AlarmName=args.yaml_alarm, StateValue="ALARM", StateReason="drill")
        check(describe_one(cw, args.yaml_alarm)["StateValue"] == "ALARM", "a file's alarm set")

    cw.delete_alarms(AlarmNames=[name])
    check(cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == [], "deleted")
    code, message = error_code(lambda: cw.delete_alarms(AlarmNames=[name]))
    check(code == "ResourceNotFound", f"delete again: {code}: {message}")
    try:
        cw.delete_alarms(AlarmNames=[name])
    except cw.exceptions.ResourceNotFound:
        pass
    out["deleted_again"] = code
    return out


def create(cw, name):
    cw.put_metric_alarm(AlarmName=name, **dict(ALARM, TreatMissingData="ignore", Period=60,
                                               Threshold=75.5),
                        Tags=[{"Key": "team", "Value": "web"}, {"Key": "tier", "Value": "1"}])
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="Before the restart")
    out = describe_one(cw, name)
    arn = out["AlarmArn"]
    # Tags given to PutMetricAlarm are kept on creation and ignored on replacement.
    cw.put_metric_alarm(AlarmName=name, **dict(ALARM, TreatMissingData="ignore", Period=60,
                                               Threshold=75.5),
                        Tags=[{"Key": "ignored", "Value": "on update"}])
    check(tags(cw, arn) == {"team": "web", "tier": "1"}, f"created tags: {tags(cw, arn)}")
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "tier", "Value": "2"},
                                           {"Key": "owner", "Value": "sre"}])
    cw.untag_resource(ResourceARN=arn, TagKeys=["team", "not-there"])
    check(tags(cw, arn) == {"tier": "2", "owner": "sre"}, f"changed tags: {tags(cw, arn)}")
    # An alarm that does not exist, and an ARN that is not an alarm's.
    missing = arn.rsplit(":", 1)[0] + ":no-such-alarm"
    code, _ = error_code(lambda: cw.list_tags_for_resource(ResourceARN=missing))
    check(code == "ResourceNotFoundException", f"unknown alarm: {code}")
    try:
        cw.tag_resource(ResourceARN=missing, Tags=[{"Key": "a", "Value": "b"}])
        fail("tagging an unknown alarm succeeded")
    except cw.exceptions.ResourceNotFoundException:
        pass
    code, message = error_code(
        lambda: cw.list_tags_for_resource(ResourceARN="arn:aws:sns:us-east-1:0:topic"))
    check(code == "InvalidParameterValue", f"not an alarm ARN: {code}: {message}")
    code, message = error_code(
        lambda: cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "aws:x", "Value": "y"}]))
    check(code == "InvalidParameterValue" and "aws:" in message, f"aws: prefix: {code}")
    return out


def push_counts(cw, errors, requests):
    now = datetime.datetime.now(datetime.timezone.utc)
    cw.put_metric_data(
        Namespace="Alarms/Math",
        MetricData=[
            {"MetricName": name, "Timestamp": now, "Value": value, "Unit": "Count",
             "StorageResolution": 1}
            for name, value in [("Errors", errors), ("Requests", requests)]
        ],
    )


def math_alarm(cw, agent, name):
    """A metric-math alarm (errors / requests * 100 > 5) created with Metrics: described
    back with its queries, driven OK -> ALARM by pushed counts."""
    stat = lambda metric: {"Metric": {"Namespace": "Alarms/Math", "MetricName": metric},
                           "Period": 10, "Stat": "Sum"}
    metrics = [
        {"Id": "errors", "MetricStat": stat("Errors"), "ReturnData": False},
        {"Id": "requests", "MetricStat": stat("Requests"), "ReturnData": False},
        {"Id": "rate", "Expression": "errors / requests * 100", "Label": "Error rate",
         "ReturnData": True},
    ]
    cw.put_metric_alarm(AlarmName=name, Metrics=metrics, EvaluationPeriods=1,
                        DatapointsToAlarm=1, Threshold=5.0,
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="missing")
    alarm = describe_one(cw, name)
    check("MetricName" not in alarm and "Statistic" not in alarm, f"a math alarm: {alarm}")
    check([m["Id"] for m in alarm["Metrics"]] == ["errors", "requests", "rate"], f"{alarm}")
    check(alarm["Metrics"][2]["Expression"] == "errors / requests * 100", f"{alarm}")
    check(alarm["Metrics"][0]["MetricStat"]["Stat"] == "Sum", f"{alarm}")
    # Metrics and MetricName together are refused; a bad expression names the query.
    code, _ = error_code(lambda: cw.put_metric_alarm(
        AlarmName=name + "-mixed", Metrics=metrics, MetricName="Errors", EvaluationPeriods=1,
        Threshold=5.0, ComparisonOperator="GreaterThanThreshold"))
    check(code == "InvalidParameterCombination", f"mixed: {code}")
    broken = metrics[:2] + [dict(metrics[2], Expression="errors / ")]
    code, message = error_code(lambda: cw.put_metric_alarm(
        AlarmName=name + "-broken", Metrics=broken, EvaluationPeriods=1, Threshold=5.0,
        ComparisonOperator="GreaterThanThreshold"))
    check(code == "InvalidParameterValue" and "Metrics.member.3" in message,
          f"broken expression: {code}: {message}")
    push_counts(agent, 1, 100)
    ok = wait_for(cw, name, "OK")
    push_counts(agent, 30, 100)
    alarm = wait_for(cw, name, "ALARM")
    return {"ok_reason": ok["StateReason"], "alarm_reason": alarm["StateReason"],
            "StateReasonData": alarm.get("StateReasonData")}


def anomaly_alarm(cw, name):
    """An anomaly detector put with a configuration, then an anomaly alarm on its metric
    (ThresholdMetricId): the alarm trains with the detector's configuration and waits in
    INSUFFICIENT_DATA for its model."""
    detector = {"Namespace": "Alarms/Anomaly", "MetricName": "Orders", "Stat": "Sum",
                "Dimensions": [{"Name": "Shop", "Value": "eu"}]}
    start = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
    config = {"ExcludedTimeRanges": [{"StartTime": start,
                                      "EndTime": start + datetime.timedelta(days=1)}],
              "MetricTimezone": "Europe/Berlin"}
    code, message = error_code(lambda: cw.put_anomaly_detector(
        SingleMetricAnomalyDetector=detector, Configuration=dict(config, MetricTimezone="Mars/Base")))
    check(code == "InvalidParameterValue" and "Mars/Base" in message, f"bad zone: {code}: {message}")
    cw.put_anomaly_detector(SingleMetricAnomalyDetector=detector, Configuration=config)
    found = cw.describe_anomaly_detectors(Namespace="Alarms/Anomaly")["AnomalyDetectors"]
    check(len(found) == 1 and found[0]["StateValue"] == "PENDING_TRAINING", f"{found}")
    check(found[0]["Configuration"]["MetricTimezone"] == "Europe/Berlin", f"{found}")
    check(found[0]["SingleMetricAnomalyDetector"]["MetricName"] == "Orders", f"{found}")
    metrics = [
        {"Id": "m1", "ReturnData": True, "MetricStat": {
            "Metric": {k: detector[k] for k in ["Namespace", "MetricName", "Dimensions"]},
            "Period": 60, "Stat": "Sum"}},
        {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "ReturnData": True},
    ]
    cw.put_metric_alarm(AlarmName=name, Metrics=metrics, ThresholdMetricId="ad1",
                        EvaluationPeriods=1,
                        ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold")
    alarm = describe_one(cw, name)
    check(alarm["ThresholdMetricId"] == "ad1" and "Threshold" not in alarm, f"{alarm}")
    check(alarm["ComparisonOperator"] == "LessThanLowerOrGreaterThanUpperThreshold", f"{alarm}")
    # One detector for the metric: the one put, not a second implied by the alarm.
    found = cw.describe_anomaly_detectors()["AnomalyDetectors"]
    check(len(found) == 1, f"one detector: {found}")
    # An anomaly alarm cannot scale (CloudWatch's rule).
    code, _ = error_code(lambda: cw.put_metric_alarm(
        AlarmName=name + "-scales", Metrics=metrics, ThresholdMetricId="ad1",
        EvaluationPeriods=1, ComparisonOperator="GreaterThanUpperThreshold",
        AlarmActions=["arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:"
                      "autoScalingGroupName/web:policyName/up"]))
    check(code == "InvalidParameterValue", f"scaling anomaly alarm: {code}")
    cw.delete_anomaly_detector(SingleMetricAnomalyDetector=detector)
    code, _ = error_code(lambda: cw.delete_anomaly_detector(SingleMetricAnomalyDetector=detector))
    check(code == "ResourceNotFoundException", f"deleted twice: {code}")
    return {"StateValue": alarm["StateValue"], "detectors": len(found)}


def tags(cw, arn):
    return {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(ResourceARN=arn)["Tags"]}


if __name__ == "__main__":
    main()
