#!/usr/bin/env bash
# The multi-host test: topologies/cluster.toml's job spread over three network namespaces
# (tests/netns/harness.sh), one `procnet run --host NAME` launcher per namespace.
#
#     bash tests/netns/run.sh               # the scenarios; skipped (exit 0) without root / ip netns
#     bash tests/netns/run.sh --require     # the same, but a skip is a failure (make cluster-test)
#     bash tests/netns/run.sh --experiment  # loss x bandwidth table in target/cluster/experiment.md
#
# Prints `ok SCENARIO` or `FAIL SCENARIO: why` per scenario and exits non-zero on any failure.
# Environment: PROCNET (the binary; default target/release/procnet, built if stale),
# CORPUS_LINES (default 100000), SCENARIOS (a space-separated list; default: exact loss+rate flap
# intruder host-failure; host-failure-early is extra), LAUNCH_TIMEOUT (seconds per launcher),
# FLAP_SECONDS (how long b's link is down in `flap`, default 4), KEEP_LOGS=1 (keep the logs of
# a run that passed: target/cluster/run.*).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=SCRIPTDIR/harness.sh
source "$HERE/harness.sh"

REQUIRE=0
EXPERIMENT=0
for arg in "$@"; do
    case $arg in
        --require) REQUIRE=1 ;;
        --experiment) EXPERIMENT=1 ;;
        *)
            echo "usage: $0 [--require] [--experiment]" >&2
            exit 2
            ;;
    esac
done

CORPUS_LINES=${CORPUS_LINES:-100000}
FLAP_SECONDS=${FLAP_SECONDS:-4}
# How long a and c may take to stop once b's launcher is killed.
HOST_FAILURE_BOUND=${HOST_FAILURE_BOUND:-30}
# Each launcher's timeout. A run takes ~5 s here (~15 s when a host dies: the others wait for
# its silence); 40 s keeps five hung scenarios under 4 min. The experiment's slow runs get 120.
if ((EXPERIMENT)); then LAUNCH_TIMEOUT=${LAUNCH_TIMEOUT:-120}; else LAUNCH_TIMEOUT=${LAUNCH_TIMEOUT:-40}; fi
SCENARIOS=${SCENARIOS:-exact loss+rate flap intruder host-failure host-failure-early}
OUT=$ROOT/target/cluster

skip() {
    if ((REQUIRE)); then
        echo "cluster-test: cannot run ($1); needs root and ip netns" >&2
        exit 1
    fi
    echo "cluster-test: skipped (needs root and ip netns)"
    exit 0
}

[[ $EUID -eq 0 ]] || skip "not root"
installs > /dev/null 2>&1 || skip "could not install iproute2 / nftables"
probe=${NS_PREFIX}probe-$$
if ! ip netns add "$probe" 2> /dev/null; then
    skip "ip netns add failed"
fi
ip netns delete "$probe"

mkdir -p "$OUT"
# One run at a time: the namespaces and addresses are fixed.
exec 9> "$OUT/.lock"
if ! flock -n 9; then
    echo "cluster-test: another run holds $OUT/.lock" >&2
    exit 1
fi

if [[ -z ${PROCNET:-} ]]; then
    PROCNET=$ROOT/target/release/procnet
    (cd "$ROOT" && cargo build --release --quiet --bin procnet)
fi
# (Captured, not piped into grep -q: an early exit of grep would break the launcher's pipe.)
help=$("$PROCNET" run --help 2>&1 || true)
if [[ $help != *--host* ]]; then
    if ((REQUIRE)); then
        echo "cluster-test: $PROCNET run has no --host" >&2
        exit 1
    fi
    echo "cluster-test: skipped (procnet run has no --host yet)"
    exit 0
fi

rm -rf "$OUT"/run.*
SCRATCH=$(mktemp -d "$OUT/run.XXXXXX")
FAILED=0
LOCAL_PID=
# The script's stderr, for the EXIT trap: a signal can arrive while stderr is redirected.
exec 8>&2

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local rc=$?
    [[ -z $LOCAL_PID ]] || kill -KILL "$LOCAL_PID" 2> /dev/null || true
    teardown
    if ((rc == 0 && FAILED == 0)) && [[ -z ${KEEP_LOGS:-} ]]; then
        rm -rf "$SCRATCH"
    else
        echo "cluster-test: logs kept in ${SCRATCH#"$ROOT"/}" >&8
    fi
    exit "$rc"
}
trap cleanup EXIT
# A command that fails outside a check ends the script (set -e): say where.
trap 'echo "cluster-test: unexpected failure at tests/netns/run.sh line $LINENO" >&8' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

ok() { echo "ok $1${2:+ ($2)}"; }
fail() {
    echo "FAIL $1: $2"
    FAILED=1
}

# The data: cluster.toml's job on a corpus big enough for the run to last a few seconds.
make_topology() {
    # The sample's lines over and over, CORPUS_LINES of them.
    awk -v n="$CORPUS_LINES" '{ line[NR] = $0 } END { for (i = 0; i < n; i++) print line[i % NR + 1] }' \
        "$ROOT/topologies/data/pages.jsonl" > "$SCRATCH/pages.jsonl"
    sed 's|^path = .*|path = "pages.jsonl"|' "$ROOT/topologies/cluster.toml" > "$SCRATCH/cluster.toml"
    grep -q '^path = "pages.jsonl"' "$SCRATCH/cluster.toml"
    TOPOLOGY=$SCRATCH/cluster.toml
}

# The tally: the text after `| ` on the last prefixed line of a launcher's stdout that holds a
# JSON object (a node's other lines, like a refused peer, are prefixed the same way).
tally_of() { grep -a '^[^ |]* *| {' "$1" 2> /dev/null | tail -n 1 | sed 's/^[^|]*| //' || true; }

same_json() {
    python3 -c 'import json, sys; sys.exit(json.loads(sys.argv[1]) != json.loads(sys.argv[2]))' "$1" "$2" 2> /dev/null
}

expected_tally() {
    local dir=$SCRATCH/local rc=0
    mkdir -p "$dir"
    timeout -k 5 "$LAUNCH_TIMEOUT" "$PROCNET" run "$TOPOLOGY" --local > "$dir/out" 2> "$dir/err" &
    LOCAL_PID=$!
    wait "$LOCAL_PID" || rc=$?
    LOCAL_PID=
    EXPECTED=$(tally_of "$dir/out")
    if ((rc != 0)) || [[ -z $EXPECTED ]]; then
        echo "cluster-test: procnet run --local failed (exit $rc):" >&2
        tail -n 5 "$dir/err" >&2
        exit 1
    fi
}

declare -A PID RC
RUN_DIR=
# Every launcher of a run over several hosts is given the same secret; nobody else has it.
PROCNET_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export PROCNET_SECRET

# Start one launcher per host (c, b, a: the coordinator last), logs in $RUN_DIR/HOST.{out,err}.
# PID[h] is the `timeout` wrapping the launcher (ip netns exec execs it); the launcher is its child.
start_run() {
    local h
    RUN_DIR=$SCRATCH/$1
    mkdir -p "$RUN_DIR"
    RUN_START=$EPOCHREALTIME
    for h in c b a; do
        # The coordinator (a) writes the run's report.
        local report=()
        [[ $h == a ]] && report=(--report "$RUN_DIR/report.json")
        ip netns exec "$(ns "$h")" timeout -k 5 "$LAUNCH_TIMEOUT" \
            "$PROCNET" run "$TOPOLOGY" --host "$h" "${report[@]}" > "$RUN_DIR/$h.out" 2> "$RUN_DIR/$h.err" &
        PID[$h]=$!
    done
}

wait_run() {
    local h
    for h in a b c; do
        RC[$h]=0
        # (Quiet: bash would report a launcher killed by a signal as "Killed".)
        { wait "${PID[$h]}"; } 2> /dev/null || RC[$h]=$?
    done
    RUN_WALL=$(awk -v a="$RUN_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
}

alive() { kill -0 "$1" 2> /dev/null; }

# Stop a run that cannot go on (SIGTERM to each `timeout`, which passes it to its launcher).
stop_run() {
    local h
    for h in a b c; do kill -TERM "${PID[$h]}" 2> /dev/null || true; done
    wait_run
}

# Wait until host b has received MIN bytes from a (the data is flowing), or a deadline.
wait_flowing() {
    local min=$1 deadline=$((SECONDS + 30)) got
    while ((SECONDS < deadline)); do
        # (No connection yet is 0, not an error: grep finding nothing must not end the script.)
        got=$(ip netns exec "$(ns b)" ss -Htni state established dst "${ADDRESS[a]}" 2> /dev/null |
            { grep -o 'bytes_received:[0-9]*' || true; } | awk -F: '{ s += $2 } END { print s + 0 }')
        ((got >= min)) && return 0
        alive "${PID[a]}" || return 1
        sleep 0.05
    done
    return 1
}

# A launcher's `procnet:` lines that say something went wrong (not the notice of joining).
complaints() { grep -a 'procnet:' "$1" 2> /dev/null | grep -v 'joined the run coordinated by' || true; }

# For the report: each launcher's exit and its first and last complaints.
errors_of() {
    local h first last
    for h in a b c; do
        first=$(complaints "$RUN_DIR/$h.err" | head -n 1)
        last=$(complaints "$RUN_DIR/$h.err" | tail -n 1)
        ((RC[$h] != 124)) || printf '%s: timed out after %s s (hung); ' "$h" "$LAUNCH_TIMEOUT"
        [[ -z $first ]] || printf '%s: exit %s: %s' "$h" "${RC[$h]}" "$first"
        [[ -z $last || $last == "$first" ]] || printf ' ... %s' "$last"
        [[ -z $first ]] || printf '; '
    done
}

exits() { echo "exits a=${RC[a]} b=${RC[b]} c=${RC[c]}"; }

# No process of the run may be left in the hosts' namespaces (a few seconds' grace).
left_over() {
    local deadline=$((SECONDS + ${1:-5})) h pids
    while :; do
        pids=
        for h in a b c; do pids+=$(ip netns pids "$(ns "$h")" 2> /dev/null || true)" "; done
        [[ -z ${pids// /} ]] && return 1
        ((SECONDS < deadline)) || break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    ps -o pid=,args= -p "$(echo $pids | tr ' ' ,)" 2> /dev/null | head -n 5 | tr '\n' ';'
    return 0
}

# Why the run was not exact (empty if it was): every launcher exits 0, c prints the expected
# tally, and no process is left.
not_exact() {
    local why="" got leftover h
    got=$(tally_of "$RUN_DIR/c.out")
    for h in a b c; do
        ((RC[$h] == 0)) || why+="launcher $h exited ${RC[$h]}; "
    done
    [[ -z $why ]] || why+=$(errors_of)
    if [[ -z $why ]] && ! same_json "$got" "$EXPECTED"; then
        why="tally ${got:-(none)} != expected $EXPECTED"
    fi
    if leftover=$(left_over); then why+=" processes left: $leftover"; fi
    printf '%s' "$why"
}

exact_run() {
    local why
    why=$(not_exact)
    if [[ -z $why ]]; then ok "$1" "$RUN_WALL s"; else fail "$1" "$why"; fi
}

scenario_exact() {
    setup
    start_run exact
    wait_run
    exact_run exact
}

scenario_loss_rate() {
    setup
    loss 1
    rate 50mbit
    start_run loss+rate
    wait_run
    exact_run loss+rate
}

# b's link down for FLAP_SECONDS (4) mid-run: exact, or a loud failure; never a silent wrong
# tally (all exits 0 with a wrong tally, or c exiting 0 without the exact tally).
scenario_flap() {
    local why="" got leftover loud=0 h
    setup
    rate 50mbit # so that the run is still going when the link comes back
    start_run flap
    if ! wait_flowing 1000000; then
        stop_run
        fail flap "no data flowed from a to b (stopped the run), or the run ended before the flap; $(exits); $(errors_of)"
        return
    fi
    # Mid-run proper: every launcher has joined the coordinator (their heartbeats are on).
    if ! wait_joined; then
        stop_run
        fail flap "b and c did not both print that they joined the run; $(exits); $(errors_of)"
        return
    fi
    flap b "$FLAP_SECONDS"
    local still=0
    for h in a b c; do alive "${PID[$h]}" && still=$((still + 1)); done
    wait_run
    got=$(tally_of "$RUN_DIR/c.out")
    for h in a b c; do
        # Loud: a non-zero exit of its own (not the timeout's) with a complaint on stderr.
        if ((RC[$h] != 0 && RC[$h] != 124 && RC[$h] != 137)) && [[ -n $(complaints "$RUN_DIR/$h.err") ]]; then
            loud=1
        fi
    done
    if ((RC[a] == 0 && RC[b] == 0 && RC[c] == 0)); then
        same_json "$got" "$EXPECTED" || why="all exited 0 but the tally is ${got:-(none)}, expected $EXPECTED"
    elif ((!loud)); then
        why="no launcher failed loudly (a non-zero exit with a procnet: error): $(exits); $(errors_of)"
    elif ((RC[c] == 0)) && ! same_json "$got" "$EXPECTED"; then
        why="c exited 0 without the exact tally (${got:-none}); $(exits); $(errors_of)"
    fi
    if leftover=$(left_over); then why+=" processes left: $leftover"; fi
    if [[ -n $why ]]; then
        fail flap "$why"
    elif ((RC[a] == 0 && RC[b] == 0 && RC[c] == 0)); then
        ok flap "survived, exact, $RUN_WALL s; $still launchers running after the flap"
    else
        if [[ -z $got ]]; then
            got="no tally"
        elif same_json "$got" "$EXPECTED"; then
            got="c's tally exact"
        else
            got="c's tally WRONG (but c failed)"
        fi
        ok flap "failed loudly after $RUN_WALL s: $(exits), $got; $(errors_of)"
    fi
}

# Every tcp port listening on a host address, as ADDRESS:PORT.
listening() {
    local h
    for h in a b c; do
        ip netns exec "$(ns "$h")" ss -Hltn 2> /dev/null | awk -v ip="${ADDRESS[$h]}" '{
            n = split($4, p, ":"); port = p[n]; addr = substr($4, 1, length($4) - length(port) - 1)
            # (An IPv6 socket, as the nodes use, shows an IPv4 address as [::ffff:a.b.c.d].)
            if (addr == ip || addr == "[::ffff:" ip "]" || addr == "0.0.0.0" || addr == "*" || addr == "[::]") print ip ":" port
        }'
    done | sort -u
}

scenario_intruder() {
    local why="" python endpoints refused
    setup
    rate 50mbit # so that the run is still going while the intruder tries
    start_run intruder
    if ! wait_flowing 1000000; then
        stop_run
        fail intruder "no data flowed from a to b (stopped the run), or the run ended before the intruder came; $(exits); $(errors_of)"
        return
    fi
    # The hosts' listeners, looked up until some show (a loaded machine may be slow to list).
    local deadline=$((SECONDS + 10))
    mapfile -t endpoints < <(listening)
    while ((${#endpoints[@]} == 0 && SECONDS < deadline)) && alive "${PID[a]}"; do
        sleep 0.1
        mapfile -t endpoints < <(listening)
    done
    python=$ROOT/target/venv/bin/python
    [[ -x $python ]] || python=python3
    if ((${#endpoints[@]} == 0)); then
        why="no tcp port listening on the hosts' addresses (a alive: $(alive "${PID[a]}" && echo yes || echo no); ss in b: $(
            ip netns exec "$(ns b)" ss -Hltn 2>&1 | tr '\n' ';')); "
    elif ! ip netns exec "$(ns x)" timeout 30 "$python" "$HERE/intruder.py" "${endpoints[@]}" \
        > "$RUN_DIR/x.out" 2>&1; then
        why="the intruder reached none of ${endpoints[*]}: $(tr '\n' ';' < "$RUN_DIR/x.out"); "
    fi
    if ! alive "${PID[a]}" && ! alive "${PID[c]}"; then
        why+="the run ended before the intruder was done (inconclusive); "
    fi
    wait_run
    why+=$(not_exact)
    # Each node (and the coordinator) that refuses says so once on stderr; its launcher passes
    # it on, prefixed.
    refused=$({ grep -a -c '10\.77\.0\.9' "$RUN_DIR"/[abc].err || true; } | awk -F: '{ s += $2 } END { print s + 0 }')
    if ((refused == 0)); then
        if grep -q '10\.77\.0\.9' "$RUN_DIR"/[abc].out; then
            why+=" 10.77.0.9 named on stdout only, not on stderr"
        else
            why+=" no launcher's stderr names the refused 10.77.0.9"
        fi
    fi
    if grep -q "): ACCEPTED" "$RUN_DIR/x.out"; then
        why+=" a zmq socket accepted the intruder: $(grep "): ACCEPTED" "$RUN_DIR/x.out" | tr "\n" ";")"
    fi
    if [[ -z $why ]]; then
        ok intruder "$(grep -c '): refused (auth)' "$RUN_DIR/x.out") handshakes with a secret refused (ZAP), none of $((3 * ${#endpoints[@]})) accepted; $refused lines on the launchers' stderr name 10.77.0.9; $(
            grep -a -h -m 1 '10\.77\.0\.9' "$RUN_DIR"/c.err)"
    else
        fail intruder "$why"
    fi
}

# Until b's and c's launchers have joined the coordinator (their notice on stderr), or a deadline.
wait_joined() {
    local deadline=$((SECONDS + 30))
    until grep -q 'joined the run' "$RUN_DIR/b.err" && grep -q 'joined the run' "$RUN_DIR/c.err"; do
        ((SECONDS < deadline)) && alive "${PID[a]}" || return 1
        sleep 0.05
    done
}

# b's launcher killed (-9) mid-run: a and c stop within 30 s naming host `b`, nothing left.
# `host-failure` kills it once data flows and every launcher has joined the coordinator;
# `host-failure-early` as soon as data flows, which is before b's
# launcher has joined (its join comes ~0.3 s after the nodes start sending).
scenario_host_failure() {
    local name=$1 why="" launcher killed_at h deadline leftover took joined
    setup
    rate 50mbit # so that the run is still going when b dies
    start_run "$name"
    if ! wait_flowing 1000000; then
        stop_run
        fail "$name" "no data flowed from a to b (stopped the run), or the run ended before the kill; $(exits); $(errors_of)"
        return
    fi
    if [[ $name == host-failure ]] && ! wait_joined; then
        stop_run
        fail "$name" "b and c did not both print that they joined the run; $(exits); $(errors_of)"
        return
    fi
    grep -q 'joined the run' "$RUN_DIR/b.err" && joined="b had joined" || joined="b had not joined yet"
    launcher=$(pgrep -P "${PID[b]}" || true)
    if [[ -z $launcher ]] || ! tr '\0' ' ' < "/proc/$launcher/cmdline" | grep -q 'procnet run'; then
        stop_run
        fail "$name" "no launcher process under b's timeout (pid ${PID[b]})"
        return
    fi
    # Not waited for (so bash does not report it "Killed"): its exit is the SIGKILL's.
    disown "${PID[b]}"
    kill -KILL "$launcher"
    killed_at=$SECONDS
    deadline=$((SECONDS + HOST_FAILURE_BOUND))
    while { alive "${PID[a]}" || alive "${PID[c]}"; } && ((SECONDS < deadline)); do sleep 0.1; done
    for h in a c; do
        if alive "${PID[$h]}"; then
            why+="launcher $h still running $HOST_FAILURE_BOUND s after b was killed ($joined); "
            kill -TERM "${PID[$h]}" 2> /dev/null || true
        fi
    done
    took=$((SECONDS - killed_at))
    wait_run
    RC[b]=137
    for h in a c; do
        ((RC[$h] != 0)) || why+="launcher $h exited 0; "
        # shellcheck disable=SC2016 # a literal backquote
        grep -q 'host `b`' "$RUN_DIR/$h.err" || why+="launcher $h's stderr does not name host \`b\`; "
    done
    if leftover=$(left_over 10); then why+="processes left: $leftover"; fi
    if [[ -z $why ]]; then
        ok "$name" "$joined; a and c stopped within ${took} s; $(errors_of)"
    else
        fail "$name" "$why $(exits); $(errors_of)"
    fi
}

# Loss x bandwidth: one run each, wall time and exactness, as a markdown table.
experiment() {
    local table=$OUT/experiment.md pct r exact
    {
        echo "# Cluster harness: loss and bandwidth"
        echo
        echo "\`bash tests/netns/run.sh --experiment\` on $(nproc) cores, $(date -u +%Y-%m-%d):"
        echo "topologies/cluster.toml's job on $CORPUS_LINES lines over 3 network namespaces;"
        echo "loss is per packet crossing the switch (nftables), the rate a tbf on each host's egress."
        echo
        echo "| loss % | rate | wall s | exits a/b/c | tally |"
        echo "| ---: | --- | ---: | --- | --- |"
    } > "$table.tmp"
    for pct in 0 1 5; do
        for r in none 100mbit 10mbit; do
            setup
            loss "$pct"
            rate "$r"
            start_run "experiment-$pct-$r"
            wait_run
            if same_json "$(tally_of "$RUN_DIR/c.out")" "$EXPECTED"; then exact=exact; else exact=WRONG; fi
            ((RC[a] == 0 && RC[b] == 0 && RC[c] == 0)) || exact="$exact (run failed)"
            printf '| %s | %s | %s | %s/%s/%s | %s |\n' "$pct" "$r" "$RUN_WALL" \
                "${RC[a]}" "${RC[b]}" "${RC[c]}" "$exact" | tee -a "$table.tmp"
            [[ $exact == exact ]] || echo "  $(errors_of)"
        done
    done
    mv "$table.tmp" "$table"
    echo "wrote ${table#"$ROOT"/}"
    # The same runs as a sweep's report (loss on x, a line per rate), drawn by `procnet plot`
    # into docs/img/ for docs/cluster.md.
    python3 - "$SCRATCH" "$OUT/experiment.json" << 'PY'
import json, pathlib, sys
scratch, out = pathlib.Path(sys.argv[1]), sys.argv[2]
losses, rates = [0, 1, 5], ["none", "100mbit", "10mbit"]
runs = []
for pct in losses:
    for r in rates:
        report = scratch / f"experiment-{pct}-{r}" / "report.json"
        if report.exists():
            run = json.loads(report.read_text())
            run.update({"params": {"loss %": pct, "rate cap": r}, "repeat": 1})
            runs.append(run)
json.dump({"topology": "cluster", "sweep": {"loss %": losses, "rate cap": rates}, "repeat": 1, "runs": runs},
          open(out, "w"), indent=2)
PY
    "$PROCNET" plot "$OUT/experiment.json" -o "$ROOT/docs/img/cluster-loss-rate.svg" \
        --title "cluster.toml over 3 network namespaces: loss and rate cap"
    echo "wrote docs/img/cluster-loss-rate.svg"
    # The table (without its heading) into docs/cluster.md, between its generated markers.
    python3 - "$table" "$ROOT/docs/cluster.md" << 'PY'
import re, sys
table, doc = sys.argv[1], sys.argv[2]
body = open(table).read().split("\n", 2)[2].strip()
text = open(doc).read()
start, end = "<!-- generated:cluster-experiment -->", "<!-- /generated:cluster-experiment -->"
i, j = text.index(start) + len(start), text.index(end)
open(doc, "w").write(text[:i] + "\n" + body + "\n" + text[j:])
PY
    echo "updated docs/cluster.md"
}

make_topology
expected_tally
echo "expected tally (procnet run --local, $CORPUS_LINES lines): $EXPECTED"

if ((EXPERIMENT)); then
    experiment
    exit 0
fi

for s in $SCENARIOS; do
    case $s in
        exact) scenario_exact ;;
        loss+rate) scenario_loss_rate ;;
        flap) scenario_flap ;;
        intruder) scenario_intruder ;;
        host-failure | host-failure-early) scenario_host_failure "$s" ;;
        *)
            fail "$s" "no such scenario"
            ;;
    esac
    teardown
done
exit "$FAILED"
