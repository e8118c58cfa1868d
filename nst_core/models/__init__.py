"""Network definitions: VGG feature extractor (Quality) and the Magenta network (Fast)."""
