"""Course labs: four exercises with starter code, reference solutions and a grader
(``sourcing lab check N``). See ``labs/README.md``."""
