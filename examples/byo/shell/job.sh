#!/bin/sh
# A trial in plain POSIX shell + awk + curl, speaking the job protocol (jobs/README.md):
#   sh job.sh RATE STEPS SIZE SEED
# Online (LADDER_INGEST_URL set) it POSTs metric batches and the result with the trial's bearer
# token, retrying connection errors, 5xx and 429; offline it writes $LADDER_OUTPUT_DIR files.
# Exit codes: 0 after the result was recorded, 2 bad arguments, 143 on SIGTERM (checkpointed),
# 1 when the ingest refuses or stays unreachable.
set -u
rate=${1:-}; steps=${2:-}; size=${3:-}; seed=${4:-0}
case "$rate$steps$size$seed" in *[!0-9.]*|'') echo "bad arguments: need numeric RATE STEPS SIZE SEED" >&2; exit 2 ;; esac
floor=${CURVE_FLOOR:-0}
out=${LADDER_OUTPUT_DIR:-ladder-output}
ckpt=${LADDER_CHECKPOINT_DIR:-$out/checkpoints}
mkdir -p "$out" "$ckpt"

# The trial id is percent-encoded in the path (every byte: simple, and valid per RFC 3986).
trial=$(printf '%s' "${LADDER_TRIAL_ID:-}" | od -An -v -tx1 | tr -d ' \n' | sed 's/../%&/g')

# POST body to $1 (metrics | result); 4xx other than 429 is final, the rest retried ~30 s.
post() {
  delay=1; tries=0
  while :; do
    tries=$((tries + 1))
    # The token goes through a header file (not argv, where ps would show it).
    code=$(printf 'Authorization: Bearer %s\n' "${LADDER_INGEST_TOKEN:-}" | curl -sS -o /dev/null -w '%{http_code}' \
      -X POST -H 'Content-Type: application/json' -H @- --data-binary "$2" \
      "${LADDER_INGEST_URL%/}/trials/$trial/$1") || code=000
    case "$code" in
      2??) return 0 ;;
      429|5??|000) [ "$tries" -ge 6 ] && { echo "POST $1 gave up after $tries tries (last: HTTP $code)" >&2; exit 1; } ;;
      *) echo "ingest refused POST $1 with HTTP $code; not retried" >&2; exit 1 ;;
    esac
    sleep "$delay"; delay=$((delay * 2))
  done
}

start=0
[ -f "$ckpt/step" ] && start=$(($(cat "$ckpt/step") + 1))
stop=0
trap 'stop=1' TERM INT
step=$start
while [ "$step" -lt "$steps" ]; do
  loss=$(awk -v r="$rate" -v s="$step" -v n="$size" -v f="$floor" -v seed="$seed" \
    'BEGIN { printf "%.6f", f + 1 / (1 + r * (s + 1)) + 1 / sqrt(n) + seed * 0.001 }')
  point="{\"name\":\"loss\",\"step\":$step,\"value\":$loss}"
  if [ -n "${LADDER_INGEST_URL:-}" ]; then post metrics "{\"points\":[$point]}"; else echo "$point" >> "$out/metrics.jsonl"; fi
  # Points first, then the checkpoint: a retry never skips a step it did not report.
  echo "$step" > "$ckpt/step.tmp" && mv "$ckpt/step.tmp" "$ckpt/step"
  [ "$stop" = 1 ] && { echo "stopped at step $step; a retry resumes" >&2; exit 143; }
  step=$((step + 1))
done

# The result carries the trial's resolved config: the JSON file Ladder wrote, else the arguments.
config="{\"rate\":$rate,\"steps\":$steps,\"size\":$size,\"seed\":$seed}"
[ -n "${LADDER_CONFIG:-}" ] && config=$(cat "$LADDER_CONFIG")
result="{\"metrics\":{\"loss\":$loss},\"config\":$config,\"meta\":{\"kind\":\"command\",\"language\":\"sh\"}}"
if [ -n "${LADDER_INGEST_URL:-}" ]; then post result "$result"; else
  echo "$result" > "$out/result.json.tmp" && mv "$out/result.json.tmp" "$out/result.json"
fi
