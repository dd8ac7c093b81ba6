"""The core: pipeline, stage, trace, schema, service and settings. No I/O frameworks."""
