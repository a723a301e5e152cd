"""The torch-free core: values that cross stage boundaries, and gradlint's own layer-graph IR."""
