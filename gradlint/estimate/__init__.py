"""Stage 3, estimate: forward moments and the backward gradient signal over a LayerGraph."""
