"""Network definitions: the VGG feature extractor (Quality, training), the arbitrary-style
network (Fast: its weights are the "magenta" source) and the transformer (Trained)."""
