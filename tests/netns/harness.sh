#!/usr/bin/env bash
# The multi-host harness: three "hosts" (network namespaces pn-a, pn-b, pn-c) and an intruder
# (pn-x), each with one veth `eth0` plugged into bridge br0 of a switch namespace (pn-sw), so
# the root namespace's network is never touched. Addresses are those of topologies/cluster.toml.
#
# Sourced by tests/netns/run.sh; also usable by hand (as root):
#     bash tests/netns/harness.sh setup          # build the network (tears down leftovers first)
#     bash tests/netns/harness.sh loss 5         # drop 5% of the packets each host receives
#     bash tests/netns/harness.sh rate 20mbit    # cap each host's egress (none: remove the cap)
#     bash tests/netns/harness.sh flap b 3       # take b's link down for 3 s
#     bash tests/netns/harness.sh teardown       # kill everything in the namespaces, delete them
set -euo pipefail

# Every namespace of the harness starts with this prefix; teardown removes all of them.
NS_PREFIX=pn-
SWITCH=${NS_PREFIX}sw
HOSTS=(a b c)
INTRUDER=x
SUBNET=10.77.0.0/24

declare -A ADDRESS=([a]=10.77.0.1 [b]=10.77.0.2 [c]=10.77.0.3 [x]=10.77.0.9)

ns() { printf '%s%s' "$NS_PREFIX" "$1"; }

log() { printf '%s\n' "$*" >&2; }

# Install what is missing of iproute2 (ip, tc, ss), nftables and ping (Debian packages).
installs() {
    local -a missing=()
    command -v ip > /dev/null && command -v tc > /dev/null && command -v ss > /dev/null ||
        missing+=(iproute2)
    command -v nft > /dev/null || missing+=(nftables)
    command -v ping > /dev/null || missing+=(iputils-ping)
    [[ ${#missing[@]} -gt 0 ]] || return 0
    log "harness: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq > /dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
}

# The harness's namespaces that exist now (from this run or a crashed earlier one).
harness_namespaces() {
    ip netns list 2> /dev/null | awk -v p="$NS_PREFIX" 'index($1, p) == 1 { print $1 }'
}

# Kill every process in every harness namespace, then delete the namespaces. Idempotent.
teardown() {
    local n pids deadline
    local -a all=()
    mapfile -t all < <(harness_namespaces)
    [[ ${#all[@]} -gt 0 ]] || return 0
    for n in "${all[@]}"; do
        pids=$(ip netns pids "$n" 2> /dev/null || true)
        # shellcheck disable=SC2086 # one pid per word
        [[ -z $pids ]] || kill -TERM $pids 2> /dev/null || true
    done
    # Give them 3 s to go, then SIGKILL what is left.
    deadline=$((SECONDS + 3))
    for n in "${all[@]}"; do
        while [[ -n $(ip netns pids "$n" 2> /dev/null || true) ]] && ((SECONDS < deadline)); do
            sleep 0.1
        done
        pids=$(ip netns pids "$n" 2> /dev/null || true)
        # shellcheck disable=SC2086
        [[ -z $pids ]] || kill -KILL $pids 2> /dev/null || true
    done
    for n in "${all[@]}"; do
        # A killed process can take a moment to leave; a busy namespace cannot be deleted.
        deadline=$((SECONDS + 5))
        while [[ -n $(ip netns pids "$n" 2> /dev/null || true) ]] && ((SECONDS < deadline)); do
            sleep 0.1
        done
        ip netns delete "$n" 2> /dev/null || true
    done
}

# Build the switch and the four machines. Any leftover harness namespace goes first.
setup() {
    local h n
    teardown
    ip netns add "$SWITCH"
    ip -n "$SWITCH" link set lo up
    ip -n "$SWITCH" link add br0 type bridge
    ip -n "$SWITCH" link set br0 up
    for h in "${HOSTS[@]}" "$INTRUDER"; do
        n=$(ns "$h")
        ip netns add "$n"
        ip -n "$n" link set lo up
        # Both ends are created inside the namespaces: the root namespace never sees them.
        ip -n "$SWITCH" link add "port-$h" type veth peer name eth0 netns "$n"
        ip -n "$SWITCH" link set "port-$h" master br0 up
        ip -n "$n" addr add "${ADDRESS[$h]}/24" dev eth0
        ip -n "$n" link set eth0 up
    done
    # The bridge forwards as soon as a port is up (no STP, forward delay 0 on a new bridge
    # without STP); check the wiring with one ping from each host to the next.
    for h in "${HOSTS[@]}" "$INTRUDER"; do
        ip netns exec "$(ns "$h")" ping -q -c 1 -W 2 "${ADDRESS[a]}" > /dev/null ||
            { log "harness: $(ns "$h") cannot reach ${ADDRESS[a]}"; return 1; }
    done
}

# loss PCT: every packet a host (a, b, c) receives from the subnet on eth0 is dropped with
# probability PCT%, so each packet crossing the switch is lost once with that probability
# (a round trip, like a ping, twice). 0 removes the rules.
loss() {
    local pct=$1 h n
    if ! [[ $pct =~ ^[0-9]+$ ]] || ((pct > 100)); then
        log "harness: loss wants 0..100, got $pct"
        return 2
    fi
    for h in "${HOSTS[@]}"; do
        n=$(ns "$h")
        ip netns exec "$n" nft delete table inet procnet 2> /dev/null || true
        ((pct > 0)) || continue
        ip netns exec "$n" nft -f - << EOF
table inet procnet {
    chain input {
        type filter hook input priority filter; policy accept;
        iifname "eth0" ip saddr $SUBNET numgen random mod 100 < $pct counter drop
    }
}
EOF
    done
}

# rate RATE: a token bucket on each host's egress (eth0); "none" removes it.
rate() {
    local r=$1 h n
    for h in "${HOSTS[@]}"; do
        n=$(ns "$h")
        if [[ $r == none ]]; then
            ip netns exec "$n" tc qdisc del dev eth0 root 2> /dev/null || true
        else
            ip netns exec "$n" tc qdisc replace dev eth0 root tbf rate "$r" burst 32kbit latency 400ms
        fi
    done
}

# flap HOST SECONDS: host's link down, wait (the sleep is the experiment), up again.
flap() {
    local h=$1 secs=$2 n
    n=$(ns "$h")
    ip -n "$n" link set eth0 down
    sleep "$secs"
    ip -n "$n" link set eth0 up
}

# Run by hand: `bash harness.sh FUNCTION ARGS...`.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    case ${1:-} in
        setup | teardown | loss | rate | flap | installs) "$@" ;;
        *)
            log "usage: $0 setup | teardown | loss PCT | rate RATE|none | flap HOST SECONDS | installs"
            exit 2
            ;;
    esac
fi
