"""The `serve` options of webhooks, and the sender's start in `serve`.

``--allow-webhook-hosts`` (like ``--allow-mail-hosts``: HOST:PORT,... beyond public
addresses on ports 80 and 443), ``--webhook-timeout`` (seconds for one attempt, from
connecting to the last byte read) and ``--webhook-first-retry`` (seconds before the
first retry; each next waits twice as long, with jitter, at most 6 hours). Each reads
``INBOXLOG_<OPTION>`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click
from starlette.applications import Starlette

from core.runtime import Runtime
from core.webhooks import RetryPolicy
from extension_api.schemas.webhooks import payload_of
from inbox_sync.outbound import Destinations
from inbox_sync.webhooks import WebhookOptions, WebhookSender

F = TypeVar("F", bound=Callable[..., Any])
NAMES = ("allow_webhook_hosts", "webhook_timeout", "webhook_first_retry")


def webhook_options(func: F) -> F:
    """Add the webhook options to a click command (they arrive among its ``**kwargs``)."""
    func = click.option(
        "--webhook-first-retry", type=click.FloatRange(min=0.05), default=30.0,
        show_default=True, envvar="INBOXLOG_WEBHOOK_FIRST_RETRY", show_envvar=True,
        help="Seconds before a failed webhook delivery is tried again; each next retry "
             "waits twice as long (with jitter, at most 6 hours), 12 attempts in all.")(func)
    func = click.option(
        "--webhook-timeout", type=click.FloatRange(min=0.1, max=120), default=10.0,
        show_default=True, envvar="INBOXLOG_WEBHOOK_TIMEOUT", show_envvar=True,
        help="Seconds one webhook attempt may take, connecting to the answer's end.")(func)
    func = click.option(
        "--allow-webhook-hosts", default="", envvar="INBOXLOG_ALLOW_WEBHOOK_HOSTS",
        show_envvar=True,
        help="More destinations webhooks may be sent to, as HOST:PORT,... (like "
             "--allow-mail-hosts). By default only public addresses on ports 80 and 443.")(func)
    return func


def webhook_config(taken: Mapping[str, Any]) -> WebhookOptions:
    """The options from a command's keyword arguments (others are ignored)."""
    try:
        destinations = Destinations.parse(str(taken.get("allow_webhook_hosts") or ""))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-webhook-hosts") from None
    policy = RetryPolicy(first_retry=float(taken.get("webhook_first_retry") or 30.0),
                         timeout=float(taken.get("webhook_timeout") or 10.0))
    return WebhookOptions(destinations=destinations, policy=policy)


def start_webhooks(runtime: Runtime, app: Starlette, options: WebhookOptions) -> WebhookSender:
    """Start the sender in the background; the API finds it on ``app.state.webhooks``
    (to refuse addresses at registration and to wake it). Several processes or nodes
    may each run one: their claims never overlap."""
    sender = app.state.webhooks = WebhookSender(runtime, payload_of, options)
    sender.start()
    return sender
