"""Stage 2, trace: an nn.Module becomes a LayerGraph (torch.fx; torch.export as fallback)."""
