#!/bin/bash
# Bytes per active series: server RSS after loading N series (hosts × 10 metrics, 10 samples
# each, time order, unary, 4 connections × 8 in flight: the comparison's series)
# minus its RSS at start. Run from the workspace root after `cargo build --release -p thermostat -p thermostat-benches`.
cd "$(dirname "$0")/.."
for n in 10000 100000 1000000; do
  D=$(mktemp -d)
  target/release/thermostat serve --grpc-addr 127.0.0.1:24318 --http-addr 127.0.0.1:28081 --data-dir $D --max-series 2000000 > /tmp/mem_srv.log 2>&1 &
  pid=$!
  sleep 1
  base=$(grep VmRSS /proc/$pid/status | awk '{print $2}')
  target/release/loadgen --target http://127.0.0.1:24318 --hosts $((n / 10)) --metrics 10 --samples-per-series 10 --order time --connections 4 --in-flight 8 --json > /tmp/mem_lg_$n.json
  after=$(grep VmRSS /proc/$pid/status | awk '{print $2}')
  hwm=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
  heap=$(curl -s 127.0.0.1:28081/metrics | grep thermostat_series_active)
  echo "series=$n base_kb=$base after_kb=$after hwm_kb=$hwm per_series_bytes=$(( (after-base)*1024/n )) $heap $(python3 -c "import json;d=json.load(open('/tmp/mem_lg_$n.json'));print('sps',int(d['samples_per_second']))")"
  kill $pid; wait $pid 2>/dev/null; rm -rf $D
done
