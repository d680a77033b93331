"""``touchstream keys``: API keys for channel systems (publish) and analysts; create, list, revoke."""

from __future__ import annotations

from touchstream.cli import CliError
from touchstream.client import OPERATOR_KEY_FILE
from touchstream.kafka_access import channel_user, sync_channel_users
from touchstream.publishing.api_keys import ApiKeyStore, UnknownKeyError
from touchstream.stack import kafka_acls
from touchstream.stack.readiness import split_bootstrap, tcp_open


def register(sub) -> None:
    p = sub.add_parser("keys", help="create, list and revoke API keys")
    ksub = p.add_subparsers(dest="keys_command", required=True)
    c = ksub.add_parser("create", help="create a key; the secret is printed once")
    c.add_argument("--system", required=True, help="channel system name, stamped as envelope.source")
    c.add_argument("--channels", default="", help="comma-separated channels this key may publish on ('*' for all)")
    c.add_argument("--scopes", default="publish", help="comma-separated: publish, analyst (read the query service), pii (see personal data), admin (rebuild, export)")
    c.set_defaults(func=create)
    ls = ksub.add_parser("list", help="list keys (never the secrets)")
    ls.set_defaults(func=list_keys)
    r = ksub.add_parser("revoke", help="delete a key: the collector and the query service answer its secret with 401")
    r.add_argument("key_id", help="the key's id, as 'keys create' and 'keys list' print it")
    r.set_defaults(func=revoke)


def create(args, settings) -> int:
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    if "publish" in scopes and not channels:
        raise CliError("a publish key needs --channels")
    try:
        secret, key = ApiKeyStore(settings.api_keys_path).create(args.system, channels, scopes)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(f"key id {key.key_id} for {key.system} (channels: {','.join(key.channels) or '-'}; scopes: {','.join(key.scopes)})")
    if settings.kafka_auth and "publish" in key.scopes:
        _sync_kafka(settings)
        user = channel_user(key.system)
        password = sync_channel_users(settings, list(kafka_acls.channel_systems(settings)))[user]
        print(f"Kafka login for publishing straight to the broker (SASL/SCRAM-SHA-512): {user} {password}")
    print(secret)   # last, so `| tail -1` is the key
    return 0


def _sync_kafka(settings) -> None:
    """Bring the broker's users and ACLs in line with the keys now, or say it happens at the next ``up``."""
    try:
        tcp_open(split_bootstrap(settings.bootstrap_servers), 1.0)   # no broker: fail in ms, not at a timeout
        kafka_acls.ensure(settings, timeout=10.0)
    except Exception as exc:  # noqa: BLE001 - the broker may be down; the keys file is what counts
        print(f"the broker was not updated now ({type(exc).__name__}); 'touchstream up' applies it")


def list_keys(args, settings) -> int:
    for key in ApiKeyStore(settings.api_keys_path).all():
        print(f"{key.key_id}  {key.system:<20} channels={','.join(key.channels) or '-'}  scopes={','.join(key.scopes)}")
    return 0


def revoke(args, settings) -> int:
    try:
        key = ApiKeyStore(settings.api_keys_path).revoke(args.key_id)
    except UnknownKeyError:
        raise CliError(f"no key with id {args.key_id!r} (revoked already?); 'touchstream keys list' shows the keys") from None
    print(f"revoked key {key.key_id} of {key.system}: its secret now gets 401 from the collector and the query service")
    if settings.kafka_auth:
        _sync_kafka(settings)   # its Kafka login goes with its last publishing key
    operator = settings.home / OPERATOR_KEY_FILE
    if operator.exists() and key.matches(operator.read_text().strip()):
        operator.unlink()   # the CLI would keep sending a dead key; serving makes a new one when it starts
        print(f"that was the local operator key: {operator} is removed; restart serving for a new one "
              "('touchstream down --only serving' then 'touchstream up')")
    return 0
