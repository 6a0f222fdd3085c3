"""`harness check`: the conformance suite for any implementation of the Items API, over HTTP only.

It never imports the reference server: what it knows of the API comes from openapi.yaml
(`harness.contract`) and the shared vocabulary (`harness.model`). See docs/conformance.md.
"""
