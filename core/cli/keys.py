"""``keys create|list|revoke``: the HTTP API's keys (the secret is printed once, at creation)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from core.cli.options import JsonOption, parse_text
from core.cli.output import console, errors, fail, print_json, shown

if TYPE_CHECKING:
    from core.http.auth import ApiKey

keys_app = typer.Typer(
    help="API keys of the HTTP API (loyalty-engine serve).", no_args_is_help=True
)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who the key is for.", parser=parse_text)],
    scopes: Annotated[
        list[str],
        typer.Option("--scope", help="events, checkout or admin (repeat for several)."),
    ],
    as_json: JsonOption = False,
) -> None:
    """Create a key with scopes and print it once (only its hash is stored)."""
    from core.http.auth import ApiKeyError, checked_scopes, create_key
    from core.runtime import get_runtime

    runtime = get_runtime()
    try:
        key_id, plaintext = create_key(runtime.engine, name, scopes, now=runtime.now())
    except ApiKeyError as exc:
        fail(str(exc))
    chosen = list(checked_scopes(scopes))
    if as_json:
        print_json({"key_id": key_id, "name": name, "scopes": chosen, "key": plaintext})
        return
    typer.echo(plaintext)
    errors.print(
        f"created key {key_id} ({shown(name)}; scopes {', '.join(chosen)}); "
        "store it now: it is not shown again",
        soft_wrap=True,
    )


@keys_app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """Every key with its scopes and when it was created, last used and revoked (no secrets)."""
    from core.http.auth import list_keys
    from core.runtime import get_runtime

    keys = list_keys(get_runtime().engine)
    if as_json:
        print_json([_shown_key(key) for key in keys])
        return
    if not keys:
        console.print("no API keys; create one with loyalty-engine keys create NAME --scope …")
    for key in keys:
        status = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        used = key.last_used_at.isoformat() if key.last_used_at else "never"
        console.print(
            f"{key.key_id}  {shown(key.name)}  scopes {', '.join(key.scopes)}  "
            f"created {key.created_at.isoformat()}  last used {used}  {status}",
            soft_wrap=True,
        )


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (keys list).", parser=parse_text)],
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from core.http.auth import KeyNotFound, revoke_key
    from core.runtime import get_runtime

    runtime = get_runtime()
    try:
        key = revoke_key(runtime.engine, key_id, now=runtime.now())
    except KeyNotFound as exc:
        fail(str(exc))
    assert key.revoked_at is not None
    console.print(f"revoked key {key.key_id} ({shown(key.name)}) at {key.revoked_at.isoformat()}")


def _shown_key(key: ApiKey) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "name": key.name,
        "scopes": list(key.scopes),
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
