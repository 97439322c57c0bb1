// Package deploy holds no code: it is the folder of the deployment files
// (Dockerfile, the systemd unit edgesplit-node@.service, the Kubernetes
// manifests in k8s/, loopback.sh), and its tests check each against what it
// deploys: the Dockerfile's build command is run and its binary checked
// static; the unit passes `systemd-analyze verify` and `security`, and its
// command line, expanded as systemd would with the example environment
// files, starts a working edge and cloud; every manifest decodes strictly
// into the Kubernetes API types, and the pods they describe are run as
// processes on loopback addresses (one address per pod) until an inference
// crosses them. docs/deploy.md walks through the same files.
package deploy
