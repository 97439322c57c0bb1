#!/usr/bin/env bash
# deploy/loopback.sh — step 1 of docs/deploy.md, as a test: a real cluster
# of three `edgesplit node` processes on 127.0.0.1 (2 clouds, 1 edge), with
# the cluster CA, role certificates and the gossip key made by `edgesplit
# ca`, exactly the commands the document shows. It waits until the edge
# sees both clouds, sends docs/digit7.png to the edge's client API (HTTPS,
# bearer token) twice (`edgesplit infer --node`, offloaded to a cloud; and
# curl, edge-only), checks that the answer is the digit 7 both ways, that
# the first one ran on a cloud and that a request without the token is
# refused, then stops the nodes one by one with SIGTERM and checks that
# each exits 0.
#
# Usage: deploy/loopback.sh            (builds ./cmd/edgesplit)
#        EDGESPLIT_BIN=path deploy/loopback.sh
# Ports (127.0.0.1): gossip 7946/7956/7966, QUIC 7947/7957/7967, HTTP 8080.
# Needs curl and jq. CI runs it (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
start_s=$(date +%s)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "loopback: FAIL: $*" >&2
	for f in "$work"/*.log; do
		[ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
}

bin=${EDGESPLIT_BIN:-}
if [ -z "$bin" ]; then
	bin=$work/edgesplit
	go build -o "$bin" ./cmd/edgesplit
fi
cd "$work"

# 1. The cluster CA and gossip key, then one certificate per node and role.
"$bin" ca init --dir ca
"$bin" ca issue --dir ca --node cloud1 --role cloud
"$bin" ca issue --dir ca --node cloud2 --role cloud
"$bin" ca issue --dir ca --node edge1 --role edge
# The API's clients file: one operator token with every scope (the token is
# printed once; only its SHA-256 is kept in ca/api-clients.yaml).
"$bin" token new --name operator --scopes infer,override,cluster,metrics --clients ca/api-clients.yaml 2>/dev/null >operator.token
chmod 600 operator.token
export EDGESPLIT_TOKEN=$(cat operator.token)

# started NAME: wait until node NAME prints its start line
# ("node NAME (ROLE) gossip=… quic=… http=…"): it is serving and joinable.
started() {
	for i in $(seq 1 300); do
		grep -q "^node $1 " "$1.log" && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || fail "node $1 exited"
		sleep 0.2
	done
	fail "node $1 did not start in 60 s"
}

# 2. Two clouds and an edge; each reads ca/ca.crt, ca/NAME.{crt,key} and
# ca/gossip.key (the default of --gossip-key-file). A node joins through
# nodes already running, so each waits for the one before.
model=seed-cnn-trained
"$bin" node --role cloud --name cloud1 --ca ca --model $model \
	--bind 127.0.0.1:7946 --quic 127.0.0.1:7947 >cloud1.log 2>&1 &
pids+=($!)
started cloud1
"$bin" node --role cloud --name cloud2 --ca ca --model $model \
	--bind 127.0.0.1:7956 --quic 127.0.0.1:7957 --join 127.0.0.1:7946 >cloud2.log 2>&1 &
pids+=($!)
started cloud2
"$bin" node --role edge --name edge1 --ca ca --model $model \
	--bind 127.0.0.1:7966 --quic 127.0.0.1:7967 --join 127.0.0.1:7946,127.0.0.1:7956 \
	--http 127.0.0.1:8080 --api-clients ca/api-clients.yaml --api-tls --audit-log audit.log >edge1.log 2>&1 &
pids+=($!)
started edge1

# 3. Wait until the edge sees both clouds alive.
# The API serves the edge's certificate, which names the cluster
# (edgesplit-node), not an address: curl resolves that name to 127.0.0.1.
edge=https://edgesplit-node:8080
curl_api() { curl -fsS --cacert ca/ca.crt --resolve edgesplit-node:8080:127.0.0.1 -H "Authorization: Bearer $EDGESPLIT_TOKEN" "$@"; }
for i in $(seq 1 300); do
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || fail "a node exited early"; done
	n=$(curl_api "$edge/v1/cluster" 2>/dev/null | jq '[.[] | select(.role == "cloud" and .alive)] | length' 2>/dev/null || echo 0)
	[ "$n" = 2 ] && break
	[ "$i" = 300 ] && fail "the edge did not see 2 live clouds in 60 s (saw $n)"
	sleep 0.2
done
echo "loopback: cluster up ($(($(date +%s) - start_s)) s): $(curl_api "$edge/v1/cluster" | jq -c '[.[] | {name, role, alive}]')"

# 4. A real inference through the edge, offloaded to a cloud.
digit=$OLDPWD/docs/digit7.png
ans=$("$bin" infer --node https://127.0.0.1:8080 --cacert ca/ca.crt --token-file operator.token --policy cloud-only "$digit") || fail "infer --node failed"
class=$(jq -r .class <<<"$ans")
cloud=$(jq -r '.cloud // ""' <<<"$ans")
[ "$class" = 7 ] || fail "infer --node answered class $class, want 7: $ans"
[ -n "$cloud" ] || fail "cloud-only request was not offloaded: $ans"
echo "loopback: infer --node: class $class on $cloud, $(jq -r .total_ms <<<"$ans") ms"
# The same image with curl, kept on the edge.
ans=$(curl_api --data-binary "@$digit" -H 'Content-Type: image/png' "$edge/v1/infer?policy=edge-only") || fail "curl POST /v1/infer failed"
[ "$(jq -r .class <<<"$ans")" = 7 ] || fail "curl answer: $ans"
echo "loopback: curl: class $(jq -r .class <<<"$ans") on the edge, $(jq -r .total_ms <<<"$ans") ms"
[ "$(grep -c '"msg":"request"' audit.log)" -ge 2 ] || fail "audit.log lacks the requests"
# Without the token: 401, and the audit log says so.
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert ca/ca.crt --resolve edgesplit-node:8080:127.0.0.1 --data-binary "@$digit" "$edge/v1/infer")
[ "$code" = 401 ] || fail "a request without a token got HTTP $code, want 401"
grep -q '"msg":"refused"' audit.log || fail "audit.log lacks the refused request"
echo "loopback: without a token: HTTP $code (audited)"

# 5. Tear down, one node at a time (edge first), as `systemctl stop` on
# each machine would: SIGTERM, the node leaves the cluster and exits 0.
for ((j = ${#pids[@]} - 1; j >= 0; j--)); do
	kill -TERM "${pids[j]}"
	wait "${pids[j]}" || fail "node ${pids[j]} exited with status $? on SIGTERM"
	unset 'pids[j]'
done
echo "loopback: cluster started, answered and stopped in $(($(date +%s) - start_s)) s"
echo "loopback: 1 passed, 0 failed"
