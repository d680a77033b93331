"""Privacy: personal data sealed per subject before it reaches Kafka, so that erasing a customer is
deleting their keys (crypto-shredding) on an event store that keeps every event forever.

``sealing`` is the token format, ``subjects`` who a value belongs to, ``pii_plan`` which fields of a
schema are personal, ``keyring`` the port that holds the data keys (``key_topic`` on Kafka).
"""
