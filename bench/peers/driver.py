#!/usr/bin/python3
"""Driver for the peers side by side (issue 19.6): calls the partition
decision of the public Neurosurgeon or DADS reimplementation
(github.com/Tjyy-1223/Neurosurgeon, github.com/Tjyy-1223/DADS) on OUR
profiles.

    driver.py neurosurgeon|dads PEER_DIR < cases.json > decisions.json

cases.json (written by bench/peers/main.go) is a list of cases, each
{"id", "nodes": [{"op", "out_floats", "edge_ms", "cloud_ms"}], "up_mbps"}:
the model's nodes in our canonical topological order with our measured
per-node latencies on the edge and cloud device profiles, and the link's
uplink in MB/s (their unit: get_speed("wifi", MB/s)).

The peers take a torch model whose layers they run to get each boundary's
size (len(pickle.dumps(tensor))). We hand them a stand-in nn.Sequential with
one layer per node of our graph whose output is a float32 tensor of that
node's output size, so their sizes are our boundary sizes (plus pickle's few
hundred bytes); ReLU and Dropout nodes are nn.ReLU / nn.Dropout subclasses,
so Neurosurgeon skips cuts after them as it does on its own models. Their
latency predictors are replaced by our per-node latencies: Neurosurgeon's
predictor_utils.predict_model_latency is patched to sum them, DADS takes
them as its edge_latency_list / cloud_latency_list arguments. The decision
code itself (neuron_surgeon_deployment; graph_construct + dinic min cut +
get_partition_points) is theirs, unmodified.

Output: a list of {"id", "k"}: k = number of nodes run on the edge (our
prefix cut K; len(nodes) = edge-only, 0 = cloud-only).
"""
import contextlib
import json
import sys

import torch
import torch.nn as nn


def _layer(base):
    """A stand-in layer class deriving from base (nn.Module, nn.ReLU or
    nn.Dropout): node i of our graph, output a float32 tensor of n values."""

    class L(base):
        def __init__(self, i, n):
            base.__init__(self)
            self.i, self.out_floats = i, n

        def forward(self, x):
            return torch.rand(self.out_floats)

    L.__name__ = base.__name__ + "Node"
    return L


Layer, ReLULayer, DropoutLayer = _layer(nn.Module), _layer(nn.ReLU), _layer(nn.Dropout)


class StandIn(nn.Module):
    """Iterable like the peers' own models (AlexNet/VggNet in their repos)."""

    has_dag_topology = False

    def __init__(self, nodes):
        super().__init__()
        layers = []
        for i, n in enumerate(nodes):
            cls = {"Relu": ReLULayer, "Dropout": DropoutLayer}.get(n["op"], Layer)
            layers.append(cls(i, n["out_floats"]))
        self.layers = nn.Sequential(*layers)
        self.len = len(layers)

    def forward(self, x):
        return self.layers(x)

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return self.len

    def __getitem__(self, i):
        return self.layers[i]


def neurosurgeon(cases):
    import deployment
    from predictor import predictor_utils

    out = []
    for c in cases:
        lat = {"edge": [n["edge_ms"] for n in c["nodes"]],
               "cloud": [n["cloud_ms"] for n in c["nodes"]]}

        def predict(x, model, device, predictor_dict, lat=lat):
            return sum(lat[device][layer.i] for layer in model)

        predictor_utils.predict_model_latency = predict
        deployment.predictor_utils.predict_model_latency = predict
        with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
            k = deployment.neuron_surgeon_deployment(StandIn(c["nodes"]), "wifi", c["up_mbps"])
        out.append({"id": c["id"], "k": int(k)})
    return out


def dads(cases):
    from dads_framework.dads import algorithm_DSL, get_partition_points

    out = []
    for c in cases:
        model = StandIn(c["nodes"])
        edge = [n["edge_ms"] for n in c["nodes"]]
        cloud = [n["cloud_ms"] for n in c["nodes"]]
        x = torch.rand((1, 3, 224, 224))
        with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
            cut_edges, node_layer = algorithm_DSL(model, x, edge, cloud, c["up_mbps"], "wifi")
            points = get_partition_points(cut_edges, node_layer)
        # A chain has one cut edge (start, end): nodes 1..start on the edge.
        # No partition edge at all means every node stayed on the edge.
        if not points:
            k = len(c["nodes"])
        else:
            k = min(s for s, _ in points)
        out.append({"id": c["id"], "k": int(k), "points": points})
    return out


def main():
    peer, root = sys.argv[1], sys.argv[2]
    sys.path.insert(0, root)
    cases = json.load(sys.stdin)
    res = {"neurosurgeon": neurosurgeon, "dads": dads}[peer](cases)
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
