"""Floor 3: serving queries against a trained model."""
