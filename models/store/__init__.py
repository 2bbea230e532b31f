"""What the pipeline remembers in Redis: the gallery, the cohort, sightings, visitors and the KNN query they share."""
