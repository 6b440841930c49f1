"""Floor 3: training and feature extraction."""
