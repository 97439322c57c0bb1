#!/usr/bin/env bash
# deploy/k8s/secrets.sh CA_DIR — print the three Secrets the manifests mount,
# from a folder made by `edgesplit ca init --dir CA_DIR` (plus the API's
# clients file, made by `edgesplit token new --clients CA_DIR/api-clients.yaml`):
#   edgesplit-ca      ca.crt, ca.key   (mounted only by the init containers,
#                                       which issue each pod's certificate)
#   edgesplit-gossip  gossip.key       (mounted by every node)
#   edgesplit-api     clients.yaml     (token digests and scopes of the API)
# Apply with: deploy/k8s/secrets.sh CA_DIR | kubectl apply -f -
# (the output holds the CA key: pipe it, do not commit it).
# deploy/k8s_test.go runs it on a fresh CA and decodes the output.
set -euo pipefail
dir=${1:?usage: secrets.sh CA_DIR (a folder made by edgesplit ca init)}
for f in ca.crt ca.key gossip.key; do
	[ -r "$dir/$f" ] || {
		echo "secrets.sh: $dir/$f missing (make it with: edgesplit ca init --dir $dir)" >&2
		exit 1
	}
done
[ -r "$dir/api-clients.yaml" ] || {
	echo "secrets.sh: $dir/api-clients.yaml missing (make it with: edgesplit token new --name NAME --scopes infer --clients $dir/api-clients.yaml)" >&2
	exit 1
}
b64() { base64 -w0 <"$1"; }
cat <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: edgesplit-ca
  labels:
    app.kubernetes.io/name: edgesplit
type: Opaque
data:
  ca.crt: $(b64 "$dir/ca.crt")
  ca.key: $(b64 "$dir/ca.key")
---
apiVersion: v1
kind: Secret
metadata:
  name: edgesplit-gossip
  labels:
    app.kubernetes.io/name: edgesplit
type: Opaque
data:
  gossip.key: $(b64 "$dir/gossip.key")
---
apiVersion: v1
kind: Secret
metadata:
  name: edgesplit-api
  labels:
    app.kubernetes.io/name: edgesplit
type: Opaque
data:
  clients.yaml: $(b64 "$dir/api-clients.yaml")
YAML
