"""Pipeline steps: each reads stored inputs and writes its outputs next to a run.json."""
