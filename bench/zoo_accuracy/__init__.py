"""Zoo accuracy benchmark (issue 18, item 2): gradlint's per-layer estimate against measured
ground truth on real model zoos. ``python -m bench.zoo_accuracy --help``; the modules:

- ``specs``: the zoo (torchvision, timm, Hugging Face, the classic failures) with family labels;
- ``truth``: the ground truth (docs/design.md's protocol, per-example gradients in chunks),
  cached outside the repository;
- ``records``: one model's run (build, ``gradlint.check``, measure, pair the layers);
- ``report``: the metrics, the Markdown report and the per-layer JSON;
- ``cli``: the command line.
"""
