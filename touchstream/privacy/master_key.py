"""The installation's master key: ``TOUCHSTREAM_MASTER_KEY`` (base64 of 32 bytes), else
``$TOUCHSTREAM_HOME/master.key``, made once (0600).

Why it matters: it wraps every data key on the key topic. Lose it and every sealed value is
unreadable; leak it together with the key topic and the sealing protects nothing. Back it up
apart from the Kafka data, and give it to a process through the environment where a file on that
host is not wanted.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from touchstream.config import MASTER_KEY_ENV
from touchstream.private_files import secret_file
from touchstream.privacy.keyring import MasterKey

ENV = MASTER_KEY_ENV
FILE = "master.key"


def master_key(home: Path, env: dict[str, str] | None = None) -> MasterKey:
    env = os.environ if env is None else env
    text = env.get(ENV) or secret_file(Path(home) / FILE, lambda: base64.b64encode(os.urandom(32)).decode())
    try:
        return MasterKey(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:
        source = ENV if env.get(ENV) else str(Path(home) / FILE)
        raise ValueError(f"{source}: the master key must be base64 of 32 bytes") from exc
