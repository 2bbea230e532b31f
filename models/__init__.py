"""Face models and what they remember: ``vision`` (detect, align, embed), ``store`` (gallery, cohort,
sightings, visitors in Redis), ``curation`` (enroll, feedback, naming visitors, forgetting) and
``evaluation`` (verification, identification, grouping). ``types`` holds the records and interfaces they
share; ``matcher`` is the open-set decision."""
