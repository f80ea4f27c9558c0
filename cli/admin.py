"""`creditlake admin …`: users, credits, balances, API keys and usage, on the ledger DB.

Same functions as /api/v1/admin/… (creditlake.ledger.admin). USER is a user id or e-mail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from creditlake.config import load_settings

admin = typer.Typer(help="Operate the credit ledger: users, credits, keys, usage.",
                    no_args_is_help=True,
                    rich_markup_mode="markdown")
user_app = typer.Typer(help="Create and list users.", no_args_is_help=True,
                    rich_markup_mode="markdown")
credits_app = typer.Typer(help="Grant credits.", no_args_is_help=True,
                    rich_markup_mode="markdown")
key_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True,
                    rich_markup_mode="markdown")
admin.add_typer(user_app, name="user")
admin.add_typer(credits_app, name="credits")
admin.add_typer(key_app, name="key")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
UserArg = Annotated[str, typer.Argument(help="User id or e-mail.")]


def _run(fn: Callable[..., dict[str, Any]], *args: Any, as_json: bool = False,
         **kwargs: Any) -> dict[str, Any]:
    """Open the ledger, run one admin function; domain errors -> stderr + exit 1 (with --json
    the error is a JSON document on stderr too: {"error": {"code", "message"}})."""
    from creditlake.ledger import Ledger, LedgerError

    try:
        ledger = Ledger(load_settings().database_url)
    except Exception as exc:  # noqa: BLE001 - bad URL, DB down: one clear line
        _fail("LEDGER_UNAVAILABLE", f"cannot open the ledger database: {exc}", as_json, 2, exc)
    try:
        return fn(ledger, *args, **kwargs)
    except LedgerError as exc:
        _fail(type(exc).__name__, str(exc), as_json, 1, exc)
    finally:
        ledger.close()


def _fail(code: str, message: str, as_json: bool, exit_code: int, exc: Exception) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": {"code": code, "message": message}}), err=True)
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(exit_code) from exc


def _emit(data: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, default=str))
    else:
        for line in lines:
            typer.echo(line)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="E-mail of the new user.")],
    credits: Annotated[int, typer.Option(min=0, help="Initial credits.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Create a user and print its id and API key (the key is shown only once)."""
    from creditlake.ledger import admin as ops

    d = _run(ops.create_user, email, credits, as_json=as_json)
    _emit(d, as_json, [f"user_id:  {d['user_id']}", f"email:    {d['email']}",
                       f"balance:  {d['balance']}", f"key_id:   {d['key_id']}",
                       f"api_key:  {d['api_key']}  (shown once; store it now)"])


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """List every user with id, e-mail, creation time and balance."""
    from creditlake.ledger import admin as ops

    d = _run(ops.list_users, as_json=as_json)
    _emit(d, as_json, [f"{u['user_id']}  {u['email']}  balance {u['balance']}  "
                       f"created {u['created_at']}" for u in d["users"]]
          or ["no users yet (create one: creditlake admin user create EMAIL)"])


@credits_app.command("add")
def credits_add(
    user: UserArg,
    amount: Annotated[int, typer.Option("--amount", min=1, help="Credits to grant.")],
    expires: Annotated[str | None, typer.Option(
        "--expires", help="Expiry (ISO date or date-time, UTC).")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept in history).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grant credits to a user, optionally expiring."""
    from creditlake.ledger import admin as ops

    d = _run(ops.add_credits, user, amount, expires_at=expires, reason=reason, as_json=as_json)
    g = d["grant"]
    _emit(d, as_json, [f"granted {g['amount']} credits to {d['email']}"
                       + (f" (expires {g['expires_at']})" if g["expires_at"] else ""),
                       f"balance: {d['balance']}"])


@admin.command("balance")
def balance(user: UserArg, as_json: JsonOpt = False) -> None:
    """Show a user's spendable balance and live grants."""
    from creditlake.ledger import admin as ops

    d = _run(ops.balance, user, as_json=as_json)
    lines = [f"{d['email']} ({d['user_id']}): balance {d['balance']}"]
    lines += [f"  grant {g['id']}: {g['remaining']}/{g['amount']} "
              f"expires {g['expires_at'] or 'never'}{' (expired)' if g['expired'] else ''}"
              f" - {g['reason']}" for g in d["grants"]]
    _emit(d, as_json, lines)


@key_app.command("create")
def key_create(user: UserArg, as_json: JsonOpt = False) -> None:
    """Create an API key for a user (shown only once)."""
    from creditlake.ledger import admin as ops

    d = _run(ops.create_key, user, as_json=as_json)
    _emit(d, as_json, [f"key_id:  {d['key_id']}",
                       f"api_key: {d['api_key']}  (shown once; store it now)"])


@key_app.command("list")
def key_list(user: UserArg, as_json: JsonOpt = False) -> None:
    """List a user's API keys: id, visible prefix, created, last used, revoked."""
    from creditlake.ledger import admin as ops

    d = _run(ops.list_keys, user, as_json=as_json)
    lines = [f"{d['email']} ({d['user_id']}): {len(d['keys'])} key(s)"]
    lines += [f"  {k['key_id']}  {k['key_prefix']}…  created {k['created_at']}  "
              f"last used {k['last_used_at'] or 'never'}  "
              f"{'revoked ' + k['revoked_at'] if k['revoked_at'] else 'active'}"
              for k in d["keys"]]
    _emit(d, as_json, lines)


@key_app.command("revoke")
def key_revoke(key: Annotated[str, typer.Argument(
                   help="Key id (from key create / key list) or the full key (sk_live_…).")],
               as_json: JsonOpt = False) -> None:
    """Revoke an API key; requests with it fail with 401 API_KEY_REVOKED at once."""
    from creditlake.ledger import admin as ops

    d = _run(ops.revoke_key, key, as_json=as_json)
    _emit(d, as_json, [f"revoked {d['key_id']} ({d['key_prefix']}…) at {d['revoked_at']}"])


@admin.command("usage")
def usage(
    user: UserArg,
    since: Annotated[str | None, typer.Option(
        "--since", help="ISO date; default: 30 days ago.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-day usage: requests, credits, records, errors, p50/p95 latency."""
    from creditlake.ledger import admin as ops

    d = _run(ops.usage, user, since=since, as_json=as_json)
    t = d["totals"]
    lines = [f"{d['email']}: {t['requests']} requests, {t['credits_used']} credits, "
             f"{t['records_returned']} records, {t['errors']} errors"]
    lines += [f"  {x['day']}: {x['requests']} req, {x['credits_used']} credits, "
              f"{x['records_returned']} records, {x['errors']} errors, "
              f"p50 {x['p50_ms']} ms, p95 {x['p95_ms']} ms" for x in d["days"]]
    _emit(d, as_json, lines)


def register(app: typer.Typer) -> None:
    app.add_typer(admin, name="admin")
