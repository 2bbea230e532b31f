"""Per-frame gear functions (decode → detect → embed → KNN → decision) and the runners that execute them."""
