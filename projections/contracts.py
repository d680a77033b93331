"""Published read models as Avro records: one compiled converter per derived schema.

Why a converter and not a hand-written encoder per record: the read model (a
``view``) stays the one definition of what is published, and ``to_avro`` fails
loudly, naming the field path, the moment it and the schema drift apart.
Pure: imports only ``touchstream.schemas`` and ``touchstream.events``.
"""

from __future__ import annotations

from typing import Callable

from touchstream.events.validation import compile_schema, to_avro
from touchstream.schemas import load_derived


def converter(name: str) -> tuple[object, Callable[[dict], dict]]:
    """(the derived schema ``name``, a function plain JSON -> its Avro-shaped record), compiled once."""
    schema = load_derived()[name]
    compiled = compile_schema(schema.schema)
    return schema, lambda data: to_avro(schema.schema, data, compiled)
