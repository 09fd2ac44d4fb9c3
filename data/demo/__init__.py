"""The seeded demonstration supplier catalog (``python -m data.demo.generator``)."""
