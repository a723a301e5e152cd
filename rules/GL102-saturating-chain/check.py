"""GL102 saturating-chain: three or more two-sided saturating activations on one path."""

from __future__ import annotations

from collections.abc import Iterator

from gradlint.core.graph import GraphNode
from gradlint.core.op_kinds import SOURCE_KINDS
from gradlint.core.values import Diagnostic, Fix, Location
from gradlint.lint.rule_api import ModelAnalysis, Rule, anchor, anchor_of

MIN_CHAIN = 3


class SaturatingChain(Rule):
    code = "GL102"
    name = "saturating-chain"
    severity = "warning"
    summary = ("Three or more saturating activations (sigmoid, tanh, hardtanh, softsign, "
               "hardsigmoid) on one path with no normalization or skip connection between them.")

    def check(self, analysis: ModelAnalysis) -> Iterator[Diagnostic]:

        nodes = analysis.nodes
        users = analysis.users
        # one forward sweep: the longest run of saturating activations ending at each tensor,
        # reset by normalization and by a skip connection joining two paths
        count = [0] * len(nodes)
        prev: list[int | None] = [None] * len(nodes)  # the run's previous activation
        last: list[int | None] = [None] * len(nodes)  # the run's last activation so far
        for node in nodes:
            ins = node.inputs
            if not ins or node.kind == "norm" or (node.op == "add" and _is_join(node, nodes)):
                continue
            best = ins[0] if len(ins) == 1 else max(ins, key=lambda i: count[i])
            count[node.index], last[node.index] = count[best], last[best]
            if node.saturating and not _is_gate(node, nodes, users):
                count[node.index] += 1
                prev[node.index] = last[best]
                last[node.index] = node.index
        reported: set[int] = set()
        # a chain ends at a counted activation (a gate passes the count on but is no end)
        ends = [n.index for n in nodes if last[n.index] == n.index and count[n.index] >= MIN_CHAIN]
        # report each maximal run once, at its first activation; one diagnostic per line
        by_line: dict[tuple[str, int], list[list[int]]] = {}
        fallback = analysis.fallback
        for end in sorted(ends, key=lambda i: -count[i]):
            if end in reported:
                continue
            chain = []
            i: int | None = end
            while i is not None:
                chain.append(i)
                i = prev[i]
            chain.reverse()
            reported.update(chain)
            at = anchor(nodes[chain[0]], fallback)
            by_line.setdefault((at.file, at.line), []).append(chain)
        for chains in by_line.values():
            yield self._diagnose(analysis, max(chains, key=len), fallback)

    def _diagnose(self, analysis: ModelAnalysis, chain: list[int],
                  fallback: Location) -> Diagnostic:
        nodes = [analysis.nodes[i] for i in chain]
        anchor, related = anchor_of(nodes[0], fallback)
        counts: dict[tuple[str, str | None, int], int] = {}  # formatted once per place
        for n in nodes:
            loc = n.anchor or n.location
            key = (n.label, loc.file, loc.line) if loc else (n.label, None, 0)
            counts[key] = counts.get(key, 0) + 1
        places: dict[str, int] = {}
        for (label, file, line), count in counts.items():
            text = f"{label} at {file}:{line}" if file is not None else label
            places[text] = places.get(text, 0) + count
        listed = ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in list(places.items())[:4])
        message = (f"saturating chain: {len(chain)} saturating activations on one path ({listed}) "
                   "with no normalization or skip connection between them; each one scales the "
                   "gradient by f′ ≤ 1 and saturated units pass almost none")
        culprit = nodes[0].label
        from gradlint.lint.fix_targets import activation_edits

        edits = activation_edits(analysis, nodes)  # hidden ones only: never outputs or gates
        fix = Fix(f"replace {culprit} with nn.ReLU or nn.GELU, or put nn.LayerNorm / "
                  "nn.BatchNorm or a residual connection between the activations",
                  (f"replace {culprit} with nn.ReLU or nn.GELU",
                   "add normalization between the activations",
                   "add residual connections around the blocks"),
                  "unsafe" if edits else "display-only", edits)
        return self.diagnostic(message, anchor, analysis.target, nodes[0].module, related, fix)


def _is_join(node: GraphNode, nodes: tuple[GraphNode, ...]) -> bool:
    """An add of two computed tensors: a skip connection joining two paths."""
    if node.op != "add":
        return False
    return sum(1 for i in node.inputs if nodes[i].op not in SOURCE_KINDS) >= 2


def _is_gate(node: GraphNode, nodes: tuple[GraphNode, ...], users: list[list[int]]) -> bool:
    """A sigmoid whose output multiplies another tensor (LSTM/GRU, SE, GLU) is a gate."""
    for u in users[node.index]:
        if nodes[u].op == "mul" and any(nodes[i].op not in SOURCE_KINDS
                                        for i in nodes[u].inputs if i != node.index):
            return True
    return False
