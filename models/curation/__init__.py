"""Changing who is who: enrollment, feedback on a face, naming and forgetting visitors and people."""
