#!/usr/bin/env bash
# Fetch benchmark: procnet's `fetch` node against ../shared/peers' thread-pool (f1) and
# asyncio (f2) fetchers, all hitting the same local fixture server, in the same run.
#
#   lines (PAGES urls) -> fetch (total concurrency CONC) -> filter body ~ "python" -> tally by site
#                               \-> tally by status (errors)
#
# Fetching N pages at latency L with C requests in flight takes close to N*L/C at best, so
# the ideal rate is C*1000/L pages/s (3200 for C=64, L=20 ms). The benchmark reports each
# fetcher's fraction of that ideal (wall time includes process start-up) and checks every
# tally against ../shared/peers/fetch_expected.py. It exits non-zero only if a run fails or a
# tally disagrees; the speed target (procnet >= TARGET of ideal) is reported, and enforced
# only with BENCH_STRICT=1.
#
# Usage: benches/fetch.sh          (or `make bench`)
# Env:   REPEAT          runs per fetcher, median reported (default 3)
#        PAGES           pages to fetch (default 10000)
#        FETCH_REPLICAS  procnet fetch replicas; concurrency per replica = CONC / replicas (default 1)
#        SWEEP=1         also run procnet as 1x64, 2x32 and 4x16 (replicas x concurrency)
#        BENCH_RUNS      which fetchers to run (default "procnet f1 f2 procnet-serve")
#        BENCH_STRICT=1  exit 1 if procnet is below TARGET of ideal
#        BENCH_PIN=0     do not pin: by default (with 2+ cores) the fixture server runs on CPU 0
#                        and each fetcher on the other CPUs, so the fixture does not compete
#                        with the fetcher under test for a core (as a remote server would not)
#        VENV            the peers' virtualenv (default target/bench/venv)
# Writes everything under target/bench/ (git-ignored); the table also goes to
# target/bench/fetch.md (Markdown).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PEERS=$REPO/../shared/peers          # the baselines, beside the repository (read-only)
OUT=$REPO/target/bench
VENV=${VENV:-$OUT/venv}
PY=$VENV/bin/python
PROCNET=$REPO/target/release/procnet
REPEAT=${REPEAT:-3}
PAGES=${PAGES:-10000}
CONC=64
LATENCY_MS=20
TARGET=0.85
OTHER_MAX=${OTHER_MAX:-20}   # warn when the rest of the machine used more CPU (% of a core) than this
FETCH_REPLICAS=${FETCH_REPLICAS:-1}
BENCH_RUNS=${BENCH_RUNS:-procnet f1 f2 procnet-serve}
BENCH_STRICT=${BENCH_STRICT:-0}
SWEEP=${SWEEP:-0}
NCPU=$(nproc)
BENCH_PIN=${BENCH_PIN:-1}
if [ "$BENCH_PIN" = 1 ] && [ "$NCPU" -ge 2 ] && command -v taskset > /dev/null; then
    FETCHER_CPUS=1
    [ "$NCPU" -eq 2 ] || FETCHER_CPUS=1-$((NCPU - 1))
    SERVER_PIN=(taskset -c 0)
    FETCHER_PIN=(taskset -c "$FETCHER_CPUS")
    PLACEMENT="fixture server pinned to CPU 0, fetcher to CPU $FETCHER_CPUS (BENCH_PIN=0: both share all $NCPU)"
else
    BENCH_PIN=0
    SERVER_PIN=()
    FETCHER_PIN=()
    PLACEMENT="fixture server and fetcher share all $NCPU CPUs"
fi
CLK_TCK=$(getconf CLK_TCK)

SERVER_PID=
BENCH_PID=
SAMPLER_PID=
cleanup() {
    # A run still going (interrupted): bench.py starts its command in a process group of
    # its own (/usr/bin/time's pid); stop that group, then bench.py and the sampler.
    # (Background jobs of a script ignore SIGINT, so Ctrl-C alone does not stop them.)
    if [ -n "$BENCH_PID" ]; then
        local child
        # shellcheck disable=SC2013  # the file is one line of space-separated pids
        for child in $(cat /proc/"$BENCH_PID"/task/*/children 2>/dev/null); do
            kill -TERM -- "-$child" 2>/dev/null || true
        done
        kill "$BENCH_PID" 2>/dev/null || true
    fi
    [ -z "$SAMPLER_PID" ] || kill "$SAMPLER_PID" 2>/dev/null || true
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
say() { echo "== $*" >&2; }

[ -d "$PEERS" ] || fail "peers not found at $PEERS (expected ../shared/peers beside the repository)"
[ $((CONC % FETCH_REPLICAS)) -eq 0 ] || fail "FETCH_REPLICAS=$FETCH_REPLICAS does not divide $CONC"
mkdir -p "$OUT"

# 1. virtualenv (pinned pyzmq, msgpack, requests, aiohttp) and the release binary
say "virtualenv $VENV"
"$PEERS/setup.sh" "$VENV"
say "cargo build --release"
(cd "$REPO" && cargo build --release --quiet --bin procnet)

# 2. corpus: PAGES docs, seed 1; reused when present with the same number of docs
CORPUS=$OUT/corpus-$PAGES-seed1.jsonl
if [ -s "$CORPUS" ] && [ "$(wc -l < "$CORPUS")" -eq "$PAGES" ]; then
    say "reusing $CORPUS"
else
    say "generating $PAGES docs into $CORPUS"
    "$PY" "$PEERS/gen_corpus.py" --docs "$PAGES" --seed 1 --out "$CORPUS.tmp"
    mv "$CORPUS.tmp" "$CORPUS"
fi
EXPECTED=$("$PY" "$PEERS/fetch_expected.py" --corpus "$CORPUS" --count "$PAGES")

# 3. fixture server: 20 ms per answer, port on its first stdout line
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
say "starting fixture_server.py (latency ${LATENCY_MS} ms)"
: > "$OUT/server.out"
"${SERVER_PIN[@]}" "$PY" "$PEERS/fixture_server.py" --corpus "$CORPUS" --latency-ms $LATENCY_MS \
    > "$OUT/server.out" 2> "$OUT/server.err" &
SERVER_PID=$!
for _ in $(seq 600); do
    [ -s "$OUT/server.out" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "fixture server exited: $(cat "$OUT/server.err")"
    sleep 0.1
done
PORT=$(head -n1 "$OUT/server.out")
[ -n "$PORT" ] || fail "fixture server did not print its port"
BASE=http://127.0.0.1:$PORT
say "fixture server at $BASE (pid $SERVER_PID)"

# The procnet input: one record per page, {"url": BASE/page/<i>, "site": <the doc's site>}.
# `site` rides along from the input (fetch does not expose response headers), so the
# per-site tally checks that the right records got through the filter.
URLS=$OUT/fetch-urls.jsonl
"$PY" - "$CORPUS" "$BASE" "$PAGES" > "$URLS" <<'EOF'
import json, sys
corpus, base, pages = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(corpus) as f:
    for _, line in zip(range(pages), f):
        doc = json.loads(line)
        print(json.dumps({"url": f"{base}/page/{doc['id']}", "site": doc["url"].split("/")[2]}))
EOF

# topology REPLICAS: write target/bench/fetch-RxC.toml, print its path
topology() {
    local replicas=$1 per=$((CONC / $1))
    local file=$OUT/fetch-${replicas}x${per}.toml
    cat > "$file" <<EOF
# Generated by benches/fetch.sh: $PAGES pages, $replicas fetch replicas x $per requests in flight.
name = "fetch-bench-${replicas}x${per}"

[nodes.urls]
kind = "lines"
path = "fetch-urls.jsonl"
format = "jsonl"

[nodes.fetch]
kind = "fetch"
inputs = ["urls"]
replicas = $replicas
concurrency = $per
timeout_ms = 30000

[nodes.python]
kind = "filter"
inputs = ["fetch"]
field = "body"
contains = "python"
ignore_case = true

[nodes.matched]
kind = "tally"
inputs = ["python"]
by = "site"

[nodes.statuses]
kind = "tally"
inputs = ["fetch"]
by = "status"
output = "fetch-statuses-${replicas}x${per}.json"
EOF
    echo "$file"
}

# procnet_tally MATCHED_TALLY STATUSES_FILE: the peers' tally format from procnet's two tallies
# (MATCHED_TALLY is the tally's stdout line, which the launcher prefixes with `matched.0  | `)
procnet_tally() {
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
line = sys.argv[1]
matched = json.loads(line[line.index("{"):])
with open(sys.argv[2]) as f:
    statuses = json.load(f)
ok = sum(n for status, n in statuses.get("by", {}).items() if status.startswith("2"))
tally = {"by_site": matched.get("by", {}), "docs": ok, "errors": statuses["count"] - ok,
         "matched": matched["count"]}
print(json.dumps(tally, sort_keys=True, separators=(",", ":")))
EOF
}

# cpu_self PID, cpu_children PID: user+system clock ticks of PID (stat fields 14, 15), and
# of its children that it waited for (16, 17)
cpu_self() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
cpu_children() { awk '{ sub(/.*\) /, ""); print $14 + $15 }' "/proc/$1/stat"; }
# cpu_busy: busy clock ticks of the whole machine (user nice system irq softirq steal)
cpu_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# bench NAME CONCURRENCY CHECK CMD...: run CMD REPEAT times through bench.py, check its tally,
# add a row. CHECK is "peer" (tally must equal EXPECTED) or a procnet statuses file.
ROWS=()
DISTURBED=()
declare -A RATE
bench() {
    local name=$1 conc=$2 check=$3; shift 3
    local wall min max rss pss tally got t0 t1 srv0 srv1 cli0 cli1 all0 all1 cli srv other sampler_cpu
    say "$name: $PAGES pages, concurrency $conc, $REPEAT run(s)"
    kill -0 "$SERVER_PID" 2>/dev/null || fail "fixture server died"
    srv0=$(cpu_self "$SERVER_PID"); cli0=$(cpu_children $$); all0=$(cpu_busy); t0=$EPOCHREALTIME
    "$PY" "$PEERS/bench.py" --repeat "$REPEAT" -- "${FETCHER_PIN[@]}" "$@" > "$OUT/bench.out" &
    BENCH_PID=$!
    "$PY" "$HERE/treepss.py" --root "$BENCH_PID" > "$OUT/treepss.out" &
    SAMPLER_PID=$!
    wait "$BENCH_PID" || { BENCH_PID=; fail "$name did not run"; }
    BENCH_PID=
    t1=$EPOCHREALTIME; srv1=$(cpu_self "$SERVER_PID"); all1=$(cpu_busy)
    wait "$SAMPLER_PID" || { SAMPLER_PID=; fail "treepss.py failed"; }
    SAMPLER_PID=
    cli1=$(cpu_children $$)
    IFS=$'\t' read -r wall min max rss _ tally < "$OUT/bench.out" || fail "$name: no result from bench.py"
    IFS=$'\t' read -r pss sampler_cpu < "$OUT/treepss.out" || fail "treepss.py printed nothing"
    if [ "$check" = peer ]; then got=$tally; else got=$(procnet_tally "$tally" "$check"); fi
    [ "$got" = "$EXPECTED" ] || fail "$name tally differs from fetch_expected.py:"$'\n'"  got      $got"$'\n'"  expected $EXPECTED"$'\n'"  raw      $tally"
    local rate ideal frac elapsed
    rate=$(calc "$PAGES / $wall")
    ideal=$(calc "$conc * 1000 / $LATENCY_MS")
    frac=$(calc "$rate / $ideal")
    elapsed=$(calc "$t1 - $t0")
    RATE[$name]=$rate
    # CPU, in percent of one core over the whole measurement (all repeats; 100 * cores = all
    # of them): the fetcher (bench.py's tree, minus treepss.py), the fixture server, and
    # everything else on the machine (treepss.py and the kernel's softirq time included),
    # which should be near 0
    cli=$(calc "(($cli1 - $cli0) / $CLK_TCK - $sampler_cpu) / $elapsed * 100")
    srv=$(calc "($srv1 - $srv0) / $CLK_TCK / $elapsed * 100")
    other=$(calc "($all1 - $all0) / $CLK_TCK / $elapsed * 100 - $cli - $srv")
    if awk "BEGIN { exit !($other > $OTHER_MAX) }"; then
        DISTURBED+=("$name ($(printf %.0f "$other")% of a core)")
    fi
    ROWS+=("$name|$PAGES|$conc|$wall|$min-$max|$(printf %.0f "$rate")|$(printf %.0f "$ideal")|$(printf %.2f "$frac")|$(printf %.0f "$cli")|$(printf %.0f "$srv")|$(printf %.0f "$other")|$rss|$pss")
}

run_procnet() {  # run_procnet REPLICAS NAME
    local file per=$((CONC / $1))
    file=$(topology "$1")
    rm -f "$OUT/fetch-statuses-${1}x${per}.json"
    "$PROCNET" check "$file" > "$OUT/fetch-check.out" 2>&1 \
        || fail "procnet check $file failed:"$'\n'"$(cat "$OUT/fetch-check.out")"
    bench "$2" "$CONC" "$OUT/fetch-statuses-${1}x${per}.json" "$PROCNET" run "$file"
}

# procnet-serve: the same job against procnet's own `serve` node (a static site with the
# same 20 ms per answer, and the same pages answering 403), in one process tree with the
# fetcher, unpinned. It shows what the fetcher reaches when the server keeps up.
serve_topology() {
    local site=$OUT/site file=$OUT/fetch-serve.toml forbidden
    if [ ! -f "$site/.pages-$PAGES" ]; then
        rm -rf "$site"
        "$PY" "$HERE/serve_site.py" pages "$CORPUS" "$site" "$PAGES"
    fi
    "$PY" "$HERE/serve_site.py" urls "$CORPUS" "$OUT/serve-urls.jsonl" "$PAGES"
    # Like fixture_server.py: ids with id % 50 == 7 answer 403 ("page/7." is exactly page 7).
    forbidden=$(seq 7 50 $((PAGES - 1)) | sed 's#.*#"bench.test/page/&."#' | paste -sd, -)
    sed -e 's#^path = "fetch-urls.jsonl"#path = "serve-urls.jsonl"#' \
        -e 's#^timeout_ms = 30000#timeout_ms = 30000\nconnect_to = "${site.url}"#' \
        -e 's#fetch-statuses-1x64.json#fetch-statuses-serve.json#' \
        -e 's#^name = .*#name = "fetch-bench-serve"#' "$(topology 1)" > "$file"
    printf '\n[nodes.site]\nkind = "serve"\ndir = "site"\nlatency_ms = %s\nforbidden = [%s]\n' \
        "$LATENCY_MS" "$forbidden" >> "$file"
    echo "$file"
}

PROCNET_NAME=
for run in $BENCH_RUNS; do
    case $run in
        procnet)
            PROCNET_NAME="procnet ${FETCH_REPLICAS}x$((CONC / FETCH_REPLICAS))"
            if [ "$SWEEP" = 1 ]; then
                for r in 1 2 4; do run_procnet "$r" "procnet ${r}x$((CONC / r))"; done
            else
                run_procnet "$FETCH_REPLICAS" "$PROCNET_NAME"
            fi ;;
        procnet-serve)
            file=$(serve_topology)
            "$PROCNET" check "$file" > "$OUT/fetch-check.out" 2>&1 \
                || fail "procnet check $file failed:"$'\n'"$(cat "$OUT/fetch-check.out")"
            rm -f "$OUT/fetch-statuses-serve.json"
            pinned=("${FETCHER_PIN[@]}")
            FETCHER_PIN=()
            bench "procnet 1x64 vs serve" "$CONC" "$OUT/fetch-statuses-serve.json" "$PROCNET" run "$file"
            FETCHER_PIN=("${pinned[@]}") ;;
        f1) bench f1_threadpool_requests "$CONC" peer "$PY" "$PEERS/f1_threadpool_requests.py" \
                --base-url "$BASE" --count "$PAGES" --concurrency "$CONC" ;;
        f2) bench f2_asyncio_aiohttp "$CONC" peer "$PY" "$PEERS/f2_asyncio_aiohttp.py" \
                --base-url "$BASE" --count "$PAGES" --concurrency "$CONC" ;;
        *) fail "unknown run \`$run\` in BENCH_RUNS (procnet, procnet-serve, f1, f2)" ;;
    esac
done

# 6./7. the table, on stdout and in Markdown
HEAD="fetcher|pages|concurrency|wall s|range s|pages/s|ideal pages/s|fraction of ideal|fetcher CPU %|server CPU %|other CPU %|RSS MiB|PSS MiB"
{
    echo
    echo "fetch: $PAGES pages, fixture_server.py with ${LATENCY_MS} ms latency, median of $REPEAT runs"
    echo "$PLACEMENT; load average before: $LOAD0"
    for row in "$HEAD" "${ROWS[@]}"; do
        IFS='|' read -r -a c <<< "$row"
        printf '%-24s %6s %5s %7s %12s %8s %9s %8s %7s %7s %7s %8s %8s\n' "${c[0]}" "${c[1]}" \
            "${c[2]/concurrency/conc}" "${c[3]}" "${c[4]}" "${c[5]}" "${c[6]/ideal pages\/s/ideal p\/s}" \
            "${c[7]/fraction of ideal/of ideal}" "${c[8]/fetcher CPU %/fet CPU}" "${c[9]/server CPU %/srv CPU}" "${c[10]/other CPU %/oth CPU}" \
            "${c[11]}" "${c[12]}"
    done
}
SUMMARY=()
if [ -n "$PROCNET_NAME" ] && [ -n "${RATE[$PROCNET_NAME]:-}" ]; then
    FRAC=$(calc "${RATE[$PROCNET_NAME]} / ($CONC * 1000 / $LATENCY_MS)")
    VERDICT=$(awk "BEGIN { print ($FRAC >= $TARGET) ? \"PASS\" : \"FAIL\" }")
    LINE="fetch: procnet reaches $(printf %.2f "$FRAC") of ideal (target $TARGET): $VERDICT"
    for p in f1_threadpool_requests f2_asyncio_aiohttp; do
        [ -z "${RATE[$p]:-}" ] || LINE+="; procnet/${p%%_*} = $(printf %.2f "$(calc "${RATE[$PROCNET_NAME]} / ${RATE[$p]}")")x"
    done
    SUMMARY+=("$LINE")
fi
[ ${#DISTURBED[@]} -eq 0 ] || SUMMARY+=("WARNING: other processes used more than $OTHER_MAX% of a core during: ${DISTURBED[*]}; those numbers are disturbed, rerun on a quiet machine.")
NOTES="wall: median of $REPEAT runs, including process start-up (interpreter and imports, procnet's launcher and nodes); ideal pages/s = concurrency * 1000 / latency ms; CPU %: user+system time over the runs' elapsed time, 100 = one core (the machine has $(nproc)), for the fetcher's processes (with bench.py's own few %), the fixture server, and everything else on the machine (a busy 'other' means a disturbed measurement); RSS: largest single process; PSS: peak summed over the fetcher's whole process tree (benches/treepss.py). All tallies match fetch_expected.py."
printf '%s\n' "${SUMMARY[@]}" "$NOTES" | fold -s -w 100

{
    echo "Fetch benchmark (\`benches/fetch.sh\`): $PAGES pages from \`fixture_server.py\` with ${LATENCY_MS} ms latency, total concurrency $CONC, median of $REPEAT runs; $PLACEMENT."
    echo
    for i in "${!ROWS[@]}"; do
        row=${ROWS[$i]}
        [ "$i" -gt 0 ] || { echo "| ${HEAD//|/ | } |"; echo "|$(printf ' --- |%.0s' $(seq 13))"; }
        echo "| ${row//|/ | } |"
    done
    echo
    for line in "${SUMMARY[@]}"; do echo "$line"; echo; done
    echo "$NOTES"
} > "$OUT/fetch.md"
echo "(Markdown table: target/bench/fetch.md)"

if [ "$BENCH_STRICT" = 1 ] && [ "${VERDICT:-PASS}" = FAIL ]; then
    fail "procnet is below $TARGET of ideal (BENCH_STRICT=1)"
fi
