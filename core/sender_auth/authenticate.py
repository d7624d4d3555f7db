"""Sender authentication of one message: checked here (SPF, DKIM, ARC, DMARC), or read
from the topmost ``Authentication-Results`` of a trusted upstream.

The checks block (DNS and RSA); :class:`SenderAuthenticator`'s ``*_async`` methods run
them in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import random
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from core.sender_auth._headers import Headers, ParsedResults, author_domain, parse_results_value
from core.sender_auth.dkim_check import verify_arc, verify_dkim
from core.sender_auth.dmarc import evaluate
from core.sender_auth.resolver import DnsConfig, Resolver
from core.sender_auth.spf_check import check_spf
from core.sender_auth.types import (
    ArcCheck,
    ArcResult,
    AuthResult,
    AuthSource,
    Disposition,
    DkimResult,
    DkimSignature,
    DmarcCheck,
    DmarcResult,
    SmtpFacts,
    SpfCheck,
    SpfResult,
)

E = TypeVar("E", SpfResult, DkimResult, DmarcResult, ArcResult)
T = TypeVar("T")


@dataclass(frozen=True)
class SenderAuthConfig:
    """The operator's settings. ``trusted_authserv_ids``: the upstream MTAs whose
    ``Authentication-Results`` count (only on mail they relay: see
    :meth:`SenderAuthenticator.from_upstream`); ``trusted_arc_sealers``: the domains whose
    ARC seal may override a DMARC failure (e.g. ``google.com``, ``outlook.com``)."""

    dns: DnsConfig
    trusted_authserv_ids: frozenset[str] = frozenset()
    trusted_arc_sealers: frozenset[str] = frozenset()


def summarize(spf: SpfCheck, dmarc: DmarcCheck, arc: ArcCheck) -> str:
    """One line saying what decided, for the email's ``auth.reason`` and SMTP replies."""
    domain = dmarc.from_domain or "the From domain"
    policy = f" (p={dmarc.policy})" if dmarc.policy else ""
    if dmarc.result is DmarcResult.PASS:
        return f"DMARC pass for {domain}{policy}: {dmarc.explanation}"
    if arc.vouched:
        return (f"DMARC {dmarc.result} for {domain}{policy}, but the ARC chain sealed by "
                f"{arc.sealer} (trusted) vouches for it")
    if dmarc.result is DmarcResult.NONE:
        return f"no DMARC record for {domain}; {dmarc.explanation}"
    return f"DMARC {dmarc.result} for {domain}{policy}: {dmarc.explanation}"


class SenderAuthenticator:
    """Checks messages with one resolver (and its cache) shared by all of them."""

    def __init__(self, config: SenderAuthConfig, *,
                 sample: Callable[[], float] = random.random,
                 executor: Executor | None = None) -> None:
        """``executor`` runs the ``*_async`` checks (default: asyncio's default executor).
        A check can hold its thread for the DNS lifetime of each lookup: give it threads
        of its own, so that a slow domain never takes the ones parsing needs."""
        self.config = config
        self.resolver = Resolver(config.dns)
        self._sample = sample
        self._executor = executor

    async def _in_thread(self, function: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            return await asyncio.to_thread(function, *args)
        call = functools.partial(contextvars.copy_context().run, function, *args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def check(self, raw: bytes, smtp: SmtpFacts) -> AuthResult:
        """Authenticate ``raw`` (the message as received, CRLF line endings) sent by this
        SMTP client. Every ``Authentication-Results`` header in it is ignored: they are the
        sender's words. Blocking."""
        headers = Headers.parse(raw)
        spf = check_spf(smtp, self.resolver)
        from_domain, why = author_domain(headers)
        signatures = verify_dkim(raw, headers, self.resolver, from_domain)
        dmarc = evaluate(from_domain, spf, signatures, self.resolver, why_no_domain=why,
                         sample=self._sample)
        arc = verify_arc(raw, headers, self.resolver, from_domain,
                         self.config.trusted_arc_sealers)
        return AuthResult(AuthSource.CHECKED, spf, signatures, dmarc, arc,
                          summarize(spf, dmarc, arc))

    def from_upstream(self, raw: bytes) -> AuthResult | None:
        """The results of the trusted upstream that relayed ``raw``: the topmost
        ``Authentication-Results`` whose authserv-id is trusted; every other one (those
        below it were there before the upstream saw the message) is ignored. ``None`` when
        there is none. Only for mail that came from the upstream itself (a trusted
        network): from anyone else, such a header is a forgery. The DMARC record is still
        looked up here, for the domain's policy. Blocking."""
        headers = Headers.parse(raw)
        trusted = {authserv.lower() for authserv in self.config.trusted_authserv_ids}
        for value in headers.all("Authentication-Results"):
            # "authserv-id [version]": a CFWS comment may follow it too.
            words = value.partition(";")[0].split("(")[0].split()
            authserv_id = words[0].lower() if words else ""
            if authserv_id in trusted:
                return self._upstream_result(headers, authserv_id, parse_results_value(value))
        return None

    def _upstream_result(self, headers: Headers, authserv_id: str,
                         parsed: ParsedResults | None) -> AuthResult:
        from_domain, why = author_domain(headers)
        results = parsed.results if parsed else ()
        spf = _upstream_spf(results)
        signatures = tuple(_upstream_dkim(results))
        computed = evaluate(from_domain, spf, signatures, self.resolver, why_no_domain=why,
                            sample=self._sample)
        dmarc = computed
        said = next((result for method, result, _ in results if method == "dmarc"), None)
        if said is not None:
            # The upstream's verdict stands (it may have applied ARC or local overrides);
            # the policy is the one looked up here.
            verdict = _enum(DmarcResult, said, DmarcResult.PERMERROR)
            if verdict is not computed.result and computed.result is not DmarcResult.TEMPERROR:
                disposition = (computed.disposition if computed.result is DmarcResult.FAIL
                               else computed.policy or Disposition.NONE)
                dmarc = DmarcCheck(verdict, computed.from_domain, computed.record,
                                   computed.policy,
                                   disposition if verdict is DmarcResult.FAIL
                                   else Disposition.NONE,
                                   computed.aligned_spf, computed.aligned_dkim,
                                   f"dmarc={said} by {authserv_id}")
        arc_said = next((result for method, result, _ in results if method == "arc"), None)
        arc = ArcCheck(_enum(ArcResult, arc_said, ArcResult.FAIL) if arc_said else ArcResult.NONE,
                       explanation=f"arc={arc_said} by {authserv_id}" if arc_said else "")
        reason = summarize(spf, dmarc, arc)
        if parsed is None:
            reason = f"the Authentication-Results of {authserv_id} are unreadable; {reason}"
        return AuthResult(AuthSource.UPSTREAM, spf, signatures, dmarc, arc,
                          f"{authserv_id}: {reason}", authserv_id=authserv_id)

    async def check_async(self, raw: bytes, smtp: SmtpFacts) -> AuthResult:
        """:meth:`check` in a worker thread."""
        return await self._in_thread(self.check, raw, smtp)

    async def from_upstream_async(self, raw: bytes) -> AuthResult | None:
        """:meth:`from_upstream` in a worker thread."""
        return await self._in_thread(self.from_upstream, raw)


def _enum(kind: type[E], value: str | None, default: E) -> E:
    try:
        return kind(value or "")
    except ValueError:
        return default


def _upstream_spf(results: Iterable[tuple[str, str, dict[str, str]]]) -> SpfCheck:
    for method, result, properties in results:
        if method == "spf":
            sender = properties.get("smtp.mailfrom", "")
            if sender:
                domain, scope = sender.rpartition("@")[2].lower(), "mfrom"
            else:
                domain, scope = properties.get("smtp.helo", "").lower(), "helo"
            return SpfCheck(_enum(SpfResult, result, SpfResult.PERMERROR), domain, scope,
                            "as reported upstream")
    return SpfCheck(SpfResult.NONE, "", "mfrom", "not reported upstream")


def _upstream_dkim(results: Iterable[tuple[str, str, dict[str, str]]]
                   ) -> Iterable[DkimSignature]:
    for method, result, properties in results:
        if method == "dkim":
            domain = (properties.get("header.d")
                      or properties.get("header.i", "").rpartition("@")[2]).lower()
            yield DkimSignature(_enum(DkimResult, result, DkimResult.FAIL), domain,
                                properties.get("header.s", "").lower(), "as reported upstream")
