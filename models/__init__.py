"""Face models (detectors, embedders) and the gallery of enrolled people in Redis."""
