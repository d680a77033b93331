"""Published contracts for subscribers: the AsyncAPI document of every topic.

Downstream services need to know, without reading this repository, which topics exist, how
their records are keyed, which Avro schemas (and registry subjects) each one carries and how
long records stay. ``asyncapi()`` derives all of it from the topic catalogue and ``schemas/``;
``python -m touchstream.contracts --write`` writes ``docs/asyncapi.yaml``, the query service
serves it (``touchstream.serving.contracts_api``), and the tests fail when a topic or a schema
is missing from it or the committed file is stale. ``docs/subscribing.md`` is the guide.
"""

from touchstream.contracts.asyncapi import DOC_PATH, WRITE_COMMAND, asyncapi, render_json, render_yaml, yaml_available

__all__ = ["DOC_PATH", "WRITE_COMMAND", "asyncapi", "render_json", "render_yaml", "yaml_available"]
