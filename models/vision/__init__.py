"""Seeing faces: decoding frames, detecting faces (one registry of detectors), aligning and embedding them."""
